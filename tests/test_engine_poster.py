"""One short smoke run with the real POSTER++ model (batch 2, SAM, a few steps), then resume and evaluate."""

from __future__ import annotations

import pytest
import torch

import ferkit
from ferkit.checkpoint import read_checkpoint
from ferkit.evaluation import evaluate
from ferkit.train import load_config, train
from tests._engine_helpers import make_folder_dataset


@pytest.mark.slow
def test_poster_v2_short_run_resume_and_eval(tmp_path):
    root = make_folder_dataset(tmp_path / "data", n_train=2, n_val=1, size=24)
    over = {"name": "poster_smoke", "data.name": "folder", "data.root": str(root), "data.val_split": "val",
            "data.num_workers": 0, "data.train_transform": {"input_size": 112},
            "data.eval_transform": {"input_size": 112},
            "data.max_val_samples": 2, "model.options": {"landmark_bn_mode": "train"}, "model.channels_last": True,
            "optim.sam": True, "optim.lr": 3.5e-5, "schedule.name": "exponential", "train.batch_size": 2,
            "train.epochs": 1, "train.max_steps_per_epoch": 1, "train.device": "cpu",
            "output.tensorboard": False, "output.plots": False, "output.progress": "off"}
    first = train(load_config(overrides=over), out_dir=tmp_path / "run")
    assert first.epochs_done == 1 and torch.isfinite(torch.tensor(first.history[0]["train_loss"]))
    resumed = train(resume=tmp_path / "run", overrides={"train.epochs": 2}, allow_changes=True)
    assert resumed.epochs_done == 2
    ckpt = read_checkpoint(tmp_path / "run" / "last.pt")
    assert ckpt["training"]["optimizer"]["state"] and ckpt["model_args"]["landmark_bn_mode"] == "train"
    model = ferkit.create_model("poster_v2", checkpoint=tmp_path / "run" / "best.pt")
    assert model.label_names == ("anger", "happiness", "neutral", "sadness")
    from ferkit.data import build_dataset
    from ferkit.models.transforms import build_transform

    ds = build_dataset("folder", root, "val")
    ds.transform = build_transform(model.data_config, False, input_size=112)
    report, feats = evaluate(model, ds, batch_size=4, features=True)
    assert report["num_samples"] == 4 and feats.shape == (4, 768)
