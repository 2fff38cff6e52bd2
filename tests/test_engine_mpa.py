"""The engine with MPA-FER's hooks (training_loss parts, prepare_training prototypes, prompt-only checkpoints) and the
paper's recipe (SGD, constant warm-up then cosine), on a tiny random CLIP. Skips until MPA-FER is in the tree."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import ferkit
from ferkit.checkpoint import read_checkpoint
from ferkit.train import load_config, train
from tests._engine_helpers import make_folder_dataset

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.fixture
def tiny_clip(tmp_path):
    if "mpa_fer_vit_b16" not in ferkit.list_models():
        pytest.skip("MPA-FER is not registered in this tree")
    pytest.importorskip("open_clip")
    from ferkit.clip import build_clip

    path = tmp_path / "clip.pt"
    torch.save(build_clip("tiny", seed=1).state_dict(), path)
    return path


@pytest.mark.slow
def test_mpa_fer_recipe_trains_and_resumes_exactly(tiny_clip, tmp_path):
    root = make_folder_dataset(tmp_path / "data", n_train=6, n_val=3, size=32)
    cfg = load_config(CONFIGS / "mpa_fer_vit_b16_rafdb.yaml", {
        "data.name": "folder", "data.root": str(root), "data.val_split": "val", "data.num_workers": 0,
        "model.options": {"clip_arch": "tiny", "clip_weights": str(tiny_clip)}, "train.epochs": 3,
        "train.batch_size": 8, "train.device": "cpu", "output.tensorboard": False, "output.progress": "off",
        "output.plots": False})
    full = train(cfg, out_dir=tmp_path / "full")
    assert [h["lr"] for h in full.history] == pytest.approx([1e-5, 0.032, 0.032 * (1 + 0.5) / 2])  # cos(pi/3)
    assert {"train_ce", "train_ta", "train_pa", "train_v"} <= set(full.history[0])
    assert list((tmp_path / "full" / "cache").iterdir())  # prototypes computed once and cached
    train(cfg, out_dir=tmp_path / "part", overrides={"train.epochs": 1})
    train(resume=tmp_path / "part", overrides={"train.epochs": 3}, allow_changes=True)
    a, b = read_checkpoint(tmp_path / "full" / "last.pt"), read_checkpoint(tmp_path / "part" / "last.pt")
    assert sorted(a["state_dict"]) == ["ctx", "vprompt"]  # prompts only, never the CLIP weights
    assert all(torch.equal(v, b["state_dict"][k]) for k, v in a["state_dict"].items())
    model = ferkit.create_model("mpa_fer_vit_b16", checkpoint=tmp_path / "full" / "best.pt", clip_arch="tiny",
                                clip_weights=str(tiny_clip))
    assert model.label_names == ("anger", "happiness", "neutral", "sadness")
