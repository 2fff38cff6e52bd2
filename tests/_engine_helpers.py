"""Helpers for the engine tests: a learnable synthetic class-folder data set and a tiny-model run config."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
TINY_PLUGIN = str(HERE / "_tiny_fer_model.py")
CLASSES = ("anger", "happiness", "neutral", "sadness")
# One colour per class plus noise: easy enough that a tiny CNN learns it in a few epochs.
COLOURS = {"anger": (200, 40, 40), "happiness": (40, 200, 40), "neutral": (128, 128, 128), "sadness": (40, 40, 200)}


def make_folder_dataset(root: Path, n_train: int = 12, n_val: int = 6, size: int = 16, seed: int = 0,
                        classes=CLASSES) -> Path:
    """``root/{train,val}/<class>/*.png`` with class-coloured noisy squares."""
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("val", n_val)):
        for c in classes:
            d = root / split / c
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                base = np.array(COLOURS[c], dtype=np.float32)
                img = base + rng.normal(0, 40, size=(size, size, 3))
                Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(d / f"{split}_{c}_{i:03d}.png")
    return root


def tiny_overrides(root: Path, out_dir: Path | None = None, **extra) -> dict:
    """A complete set of dotted overrides for a fast CPU run of ``tiny_fer`` on the folder data set."""
    cfg = {
        "name": "tiny", "plugins": [TINY_PLUGIN],
        "model.name": "tiny_fer",
        "data.name": "folder", "data.root": str(root), "data.train_split": "train", "data.val_split": "val",
        "data.num_workers": 0, "data.train_transform": {"erasing_p": 0.5},
        "optim.name": "adam", "optim.lr": 0.01,
        "schedule.name": "exponential", "schedule.gamma": 0.9,
        "train.epochs": 3, "train.batch_size": 8, "train.device": "cpu", "train.seed": 1,
        "output.tensorboard": False, "output.progress": "off", "output.plots": False,
    }
    if out_dir is not None:
        cfg["output.dir"] = str(out_dir)
    cfg.update(extra)
    return cfg
