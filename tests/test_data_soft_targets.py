"""Soft (vote) targets, the FER2013 label join by pixels, and the transform options of the default recipe."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ferkit.data import build_dataset, fer_join
from ferkit.data.dataset import FerDataset
from ferkit.errors import ConfigError, DatasetError
from ferkit.labels import DATASET_ORDERS
from ferkit.models.transforms import build_transform

VOTES = [  # neutral, happiness, surprise, sadness, anger, disgust, fear, contempt, unknown, NF
    [6, 4, 0, 0, 0, 0, 0, 0, 0, 0],
    [0, 0, 9, 0, 0, 0, 1, 0, 0, 0],
    [0, 1, 0, 0, 5, 2, 0, 0, 2, 0],
    [0, 0, 0, 0, 0, 0, 0, 0, 7, 3],  # won by unknown: dropped
]
FER2013_OF = ["neutral", "surprise", "disgust", "fear"]  # original FER2013 label of each image (different from FER+)


def _face(i: int) -> np.ndarray:
    rng = np.random.default_rng(i)
    return rng.integers(0, 256, (48, 48), dtype=np.uint8)


def _ferplus_folder(root: Path) -> Path:
    folder = root / "ferplus" / "FER2013Train"
    folder.mkdir(parents=True)
    with open(folder / "label.csv", "w", newline="") as f:
        w = csv.writer(f)
        for i, votes in enumerate(VOTES):
            Image.fromarray(_face(i)).save(folder / f"fer{i:07d}.png")
            w.writerow([f"fer{i:07d}.png", "(0, 0, 48, 48)", *votes])
    return root / "ferplus"


def _fer2013_folder(root: Path, *, skip: int | None = None) -> Path:
    """FER2013's JPEG copies of the same faces, under other names and in another order."""
    for i in reversed(range(len(VOTES))):
        if i == skip:
            continue
        folder = root / "fer2013" / "train" / FER2013_OF[i]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(_face(i)).save(folder / f"Training_{1000 + 7 * i}.jpg", quality=90)
    for name in DATASET_ORDERS["fer2013"]:
        (root / "fer2013" / "train" / name).mkdir(parents=True, exist_ok=True)
    return root / "fer2013"


def test_vote_shares_as_soft_targets(tmp_path: Path) -> None:
    ds = build_dataset("ferplus", _ferplus_folder(tmp_path), "train", targets="votes")
    assert len(ds) == 3 and ds.targets == [0, 2, 4]  # hard labels stay (samplers, class counts)
    _, t0 = ds[0]
    assert t0.dtype == torch.float32 and torch.allclose(t0, torch.tensor([0.6, 0.4, 0, 0, 0, 0, 0, 0]))
    _, t2 = ds[2]  # unknown / NF votes left out of the shares
    assert torch.allclose(t2, torch.tensor([0, 1, 0, 0, 5, 2, 0, 0]) / 8)
    assert isinstance(build_dataset("ferplus", tmp_path / "ferplus", "train")[0][1], int)


def test_fer2013_labels_join_by_pixels(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("FERKIT_HOME", str(tmp_path / "home"))
    ds = build_dataset("ferplus", _ferplus_folder(tmp_path), "train", targets="votes",
                       aux_fer2013_root=str(_fer2013_folder(tmp_path)))
    order = DATASET_ORDERS["fer2013"]
    for i in range(3):
        aux = ds[i][1][8:]
        assert aux.sum() == 1 and order[int(aux.argmax())] == FER2013_OF[i]
    # the join is cached: a second build does not decode the images again
    monkeypatch.setattr(fer_join, "_grey", lambda p: (_ for _ in ()).throw(AssertionError("decoded again")))
    again = build_dataset("ferplus", tmp_path / "ferplus", "train", targets="votes",
                          aux_fer2013_root=str(tmp_path / "fer2013"))
    assert torch.equal(again[1][1], ds[1][1])


def test_unmatched_image_gets_an_empty_aux_target(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("FERKIT_HOME", str(tmp_path / "home"))
    ds = build_dataset("ferplus", _ferplus_folder(tmp_path), "train", targets="votes",
                       aux_fer2013_root=str(_fer2013_folder(tmp_path, skip=1)))
    assert ds[1][1][8:].sum() == 0 and ds[0][1][8:].sum() == 1


def test_nearest_and_threshold() -> None:
    a = np.stack([_face(i).reshape(-1).astype(np.float32) for i in range(3)])
    b = a[[2, 0]] + 1.0  # image 1 has no twin; the others are off by exactly one grey level
    idx, rms = fer_join.nearest(a, b)
    assert idx[0] == 1 and idx[2] == 0 and rms[0] == pytest.approx(1.0) and rms[1] > 50


def test_soft_target_options_are_checked(tmp_path: Path) -> None:
    root = _ferplus_folder(tmp_path)
    with pytest.raises(DatasetError, match="targets must be"):
        build_dataset("ferplus", root, "train", targets="probabilities")
    with pytest.raises(DatasetError, match="needs targets='votes'"):
        build_dataset("ferplus", root, "train", aux_fer2013_root=str(tmp_path))
    ds = build_dataset("ferplus", root, "train", targets="votes")
    with pytest.raises(DatasetError, match="cannot be remapped"):
        ds.with_label_names("rafdb", drop_missing=True)


def test_set_soft_targets_validation_and_selection() -> None:
    ds = FerDataset([("a", 0), ("b", 1), ("c", 0)], ["neutral", "happiness"], name="x", split="train", root=".")
    with pytest.raises(DatasetError, match="3 samples"):
        ds.set_soft_targets([(1.0, 0.0)])
    with pytest.raises(DatasetError, match="width"):
        ds.set_soft_targets([(1.0,), (1.0,), (1.0,)])
    ds.set_soft_targets([(1.0, 0.0), (0.2, 0.8), (0.9, 0.1)])
    clone = ds._copy()
    clone._select([2, 1])
    assert clone.soft_targets == [(0.9, 0.1), (0.2, 0.8)] and clone.targets == [0, 1]


def test_grey_and_affine_transform_options() -> None:
    img = Image.fromarray(np.dstack([np.full((48, 48), v, np.uint8) for v in (200, 40, 90)]))
    dc = {"input_size": 112, "mean": (0.5,) * 3, "std": (0.5,) * 3, "family": "poster_v2", "grayscale": True}
    x = build_transform(dc, False)(img)
    assert x.shape == (3, 112, 112) and torch.equal(x[0], x[1]) and torch.equal(x[1], x[2])
    grey = (0.299 * 200 + 0.587 * 40 + 0.114 * 90) / 255  # ITU-R 601-2 luma, as PIL's "L"
    assert x[0, 50, 50].item() == pytest.approx((grey - 0.5) / 0.5, abs=0.01)
    colour = build_transform({**dc, "grayscale": False}, False)(img)
    assert not torch.equal(colour[0], colour[1])
    t = build_transform(dc, True, rotation=10, translate=0.1, scale=(0.9, 1.1), erasing_p=0.0)
    assert any(type(s).__name__ == "RandomAffine" for s in t.transforms)
    with pytest.raises(ConfigError, match="translate"):
        build_transform(dc, True, translate=1.5)
    with pytest.raises(ConfigError, match="scale"):
        build_transform(dc, True, scale=(1.2, 0.9))
