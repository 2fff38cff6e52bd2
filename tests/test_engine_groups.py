"""Training extras of the default-model recipe: frozen prefixes, per-prefix learning-rate factors, linear warm-up,
soft targets through the step runner, validation options."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from ferkit.errors import ConfigError
from ferkit.train import load_config, train
from ferkit.train.config import OptimSection, ScheduleSection
from ferkit.train.optim import build_optimizer
from ferkit.train.plugins import import_plugins
from ferkit.train.schedule import LRSchedule, set_lr
from ferkit.train.step import StepStats, TrainForward
from tests._engine_helpers import TINY_PLUGIN, make_folder_dataset, tiny_overrides

import_plugins([TINY_PLUGIN])  # registers tiny_fer, as a run naming the plugin does


def test_linear_warmup_ramps_to_the_main_schedule() -> None:
    cfg = ScheduleSection(name="cosine", interval="step", warmup_epochs=0.5, warmup_lr=1e-5, warmup_mode="linear")
    s = LRSchedule(cfg, base_lr=1e-3, epochs=4)
    assert s.lr_at(0.0) == pytest.approx(1e-5)
    assert s.lr_at(0.25) == pytest.approx(1e-5 + (1e-3 - 1e-5) * 0.5)
    assert s.lr_at(0.5) == pytest.approx(1e-3)  # main schedule at its start
    assert s.lr_at(2.5) == pytest.approx(1e-3 * (1 + math.cos(math.pi * 2 / 4)) / 2)
    constant = LRSchedule(ScheduleSection(warmup_epochs=1, warmup_lr=2e-5), base_lr=1e-3, epochs=4)
    assert constant.lr_at(0.7) == 2e-5 and constant.lr_at(1) == 1e-3


def test_parameter_groups_keep_their_lr_factor() -> None:
    a, b = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(3))
    opt = build_optimizer([{"params": [a], "lr_scale": 0.2}, {"params": [b], "lr_scale": 1.0},
                           {"params": [], "lr_scale": 5.0}], OptimSection(name="adamw", lr=1e-3))
    assert [g["lr"] for g in opt.param_groups] == [pytest.approx(2e-4), pytest.approx(1e-3)]  # empty group dropped
    set_lr(opt, 1e-2)
    assert [g["lr"] for g in opt.param_groups] == [pytest.approx(2e-3), pytest.approx(1e-2)]


def test_soft_targets_through_the_step() -> None:
    stats = StepStats()
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 3.0]])
    soft = torch.tensor([[0.7, 0.3, 0.0, 1.0], [0.5, 0.0, 0.5, 0.0]])  # 4th column: extra (auxiliary) target
    stats.add(torch.tensor(1.0), logits, soft, {})
    assert stats.correct == 1  # row 0: argmax 0 = 0; row 1: the soft argmax is class 0, predicted 2

    class Plain(torch.nn.Module):
        def forward(self, x):
            return x

    fwd = TrainForward(Plain(), label_smoothing=0.0)
    loss, _, _ = fwd(logits, soft[:, :3])
    assert loss.item() == pytest.approx(-(soft[:, :3] * logits.log_softmax(1)).sum(1).mean().item())


def test_freeze_and_lr_scales_in_a_run(tmp_path: Path) -> None:
    root = make_folder_dataset(tmp_path / "data")
    overrides = tiny_overrides(root, tmp_path / "run", **{
        "plugins": [], "train.epochs": 1, "model.freeze": ["body.0"], "optim.lr_scales": {"head": 0.5},
        "schedule.name": "constant"})
    cfg = load_config(overrides=overrides)
    before = None
    from ferkit.train.trainer import Trainer

    trainer = Trainer(cfg, tmp_path / "run")
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    lrs = sorted(g["lr"] for g in trainer.optimizer.param_groups)
    assert lrs == [pytest.approx(0.005), pytest.approx(0.01)]
    trainer.fit()
    after = trainer.model.state_dict()
    assert torch.equal(before["body.0.weight"], after["body.0.weight"])  # frozen
    assert not torch.equal(before["body.4.weight"], after["body.4.weight"])  # trained
    assert not torch.equal(before["head.weight"], after["head.weight"])
    with pytest.raises(ConfigError, match="no parameter name starts with 'bodyy'"):
        train(load_config(overrides={**overrides, "model.freeze": ["bodyy"], "output.dir": str(tmp_path / "r2")}))


def test_checkpoint_carries_the_training_input(tmp_path: Path) -> None:
    """A run fed 24-px grey inputs saves that preprocessing; the loaded model (eval / predict / export) uses it."""
    import ferkit
    from ferkit.checkpoint import read_checkpoint
    from ferkit.models.transforms import build_eval_transform

    root = make_folder_dataset(tmp_path / "data")
    overrides = tiny_overrides(root, tmp_path / "run", **{
        "plugins": [], "train.epochs": 1, "data.train_transform": {"input_size": 24, "grayscale": True},
        "data.eval_transform": {"input_size": 24, "grayscale": True}})
    train(load_config(overrides=overrides))
    ckpt = read_checkpoint(tmp_path / "run" / "last.pt")
    assert ckpt["data_config"]["input_size"] == 24 and ckpt["data_config"]["grayscale"] is True
    model = ferkit.create_model("tiny_fer", checkpoint=tmp_path / "run" / "last.pt")
    assert model.data_config["input_size"] == 24 and model.data_config["grayscale"] is True
    assert ferkit.create_model("tiny_fer").data_config["input_size"] == 16  # the model's own default
    from PIL import Image

    x = build_eval_transform(model.data_config)(Image.new("RGB", (50, 50), (200, 10, 10)))
    assert x.shape == (3, 24, 24) and torch.equal(x[0], x[1])


def test_checkpoint_head_is_announced(caplog) -> None:
    """An 8-class checkpoint loaded without num_classes / label_names says which classes it brings (issue 15)."""
    import logging

    from ferkit.labels import DATASET_ORDERS
    from ferkit.models._factory import _classes_from_checkpoint

    names = list(DATASET_ORDERS["affectnet8"])
    with caplog.at_level(logging.INFO, logger="ferkit.models._factory"):
        assert _classes_from_checkpoint({"num_classes": 8, "label_names": names}, None, None) == (8, names)
    assert "checkpoint head: 8 classes" in caplog.text and "contempt" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="ferkit.models._factory"):
        _classes_from_checkpoint({"num_classes": 8, "label_names": names}, 8, None)  # asked for: nothing to say
    assert "checkpoint head" not in caplog.text
