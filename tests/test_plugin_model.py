"""A model family, a model and a data set added as a plugin (tests/plugins/toy_family.py), without touching ferkit:
registry, family transforms, training, checkpoint, inference, explanation and ONNX export all reach it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from tests._engine_helpers import make_folder_dataset

PLUGIN = "tests/plugins/toy_family.py"


@pytest.fixture(scope="module")
def toy():
    from tests.plugins import toy_family

    return toy_family


@pytest.fixture(scope="module")
def trained(toy, tmp_path_factory):
    from ferkit.train import train

    root = make_folder_dataset(tmp_path_factory.mktemp("data"), n_train=8, n_val=4)
    out = tmp_path_factory.mktemp("run")
    overrides = {"model.name": "toy_attention", "data.name": "toy_folder", "data.root": str(root),
                 "data.train_split": "train", "data.val_split": "val", "data.num_workers": 0, "optim.name": "adam",
                 "optim.lr": 0.01, "train.epochs": 1, "train.batch_size": 8, "train.device": "cpu",
                 "output.tensorboard": False, "output.progress": "off", "output.plots": False}
    from ferkit.train import RunConfig

    result = train(RunConfig(), overrides=overrides, out_dir=out)
    return result, root


def test_registries_list_the_plugin(toy):
    import ferkit
    from ferkit.data.registry import list_datasets
    from ferkit.models import get_entry, list_families

    assert "toy_attention" in ferkit.list_models() and "toy" in list_families() and "toy_folder" in list_datasets()
    assert get_entry("toy_attention").family_spec.transform_defaults(True, None) == toy.TRANSFORMS


def test_family_transforms_come_from_the_plugin(toy):
    from ferkit.models import build_transform, create_model, resolve_transform_config

    model = create_model("toy_attention", label_names=["anger", "happiness", "neutral", "sadness"])
    assert model.model_name == "toy_attention"  # set by create_model, not by the constructor
    cfg = resolve_transform_config(model, True)
    assert (cfg.grayscale, cfg.hflip, cfg.erasing_p, cfg.interpolation, cfg.input_size) == (True, 0.0, 0.0,
                                                                                             "nearest", 16)
    rgb = Image.fromarray(np.stack([np.full((20, 20), v, np.uint8) for v in (255, 0, 0)], -1))
    x = build_transform(model, True)(rgb)  # the model's mean = std = 0.5 on every channel
    assert x.shape == (3, 16, 16) and torch.allclose(x[0], x[1])  # grey: the three channels are equal
    assert build_transform("toy", True).transforms[0].__class__.__name__ == "Grayscale"
    y = build_transform({**model.data_config, "family": "poster_v2"}, True, hflip=0.0)(rgb)
    assert not torch.allclose(y[0], y[1])  # another family's transforms keep colour


def test_training_inference_explain_export(trained, tmp_path):
    import ferkit
    from ferkit.explain import explain
    from ferkit.export.onnx import export_onnx

    result, root = trained
    ckpt = result.out_dir / "last.pt"
    rec = ferkit.load("toy_attention", checkpoint=ckpt, detector="none")
    assert rec.data_config["grayscale"] is True  # the family's training transform travelled with the checkpoint
    photo = next((root / "val" / "happiness").glob("*.png"))
    record = rec.predict(str(photo))
    assert record.faces[0].label in ("anger", "happiness", "neutral", "sadness")
    probs = np.array(list(record.faces[0].scores.values()))
    assert probs.sum() == pytest.approx(1.0, abs=1e-5)

    exp = explain(rec, str(photo))
    assert exp.method == "attention"  # the plugin's default_explanation and attention_maps hook
    assert exp.faces[0].raw.shape == (16, 16) and exp.faces[0].raw.sum() == pytest.approx(1.0, abs=1e-4)

    model = ferkit.create_model("toy_attention", checkpoint=ckpt)
    report = export_onnx(model, tmp_path / "toy.onnx")
    assert (tmp_path / "toy.onnx").is_file() and report["max_abs_diff"] < 1e-4
