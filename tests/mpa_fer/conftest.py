"""Fixtures for the MPA-FER / CLIP tests: a tiny random CLIP saved in real file formats, tiny models, a small
synthetic image data set following the data contract."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("open_clip")


@pytest.fixture(scope="session")
def tiny_clip_file(tmp_path_factory):
    """A tiny random CLIP saved as an OpenAI-layout state dict (``torch.save``)."""
    from ferkit.clip import build_clip

    path = tmp_path_factory.mktemp("clip") / "tiny_clip.pt"
    torch.save(build_clip("tiny", seed=1).state_dict(), path)
    return path


@pytest.fixture
def make_model(tiny_clip_file):
    """``make_model(**overrides)`` -> MPA-FER on the tiny CLIP file (RAF-DB order unless ``label_names`` given)."""
    import ferkit

    def make(name: str = "mpa_fer_vit_b16", **overrides):
        overrides.setdefault("clip_arch", "tiny")
        overrides.setdefault("clip_weights", str(tiny_clip_file))
        return ferkit.create_model(name, **overrides)

    return make


class ToyFaces:
    """Data-contract data set: ``label_names``, ``targets``, ``samples``, ``transform``; PIL RGB images."""

    def __init__(self, targets, label_names=("surprise", "fear", "disgust", "happiness", "sadness", "anger",
                                             "neutral"), size=40, seed=0, transform=None):
        self.label_names = tuple(label_names)
        self.targets = list(targets)
        rng = np.random.default_rng(seed)
        self.arrays = [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in self.targets]
        self.samples = [(f"img_{seed}_{i}.png", t) for i, t in enumerate(self.targets)]
        self.transform = transform
        self.reads = 0

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, i):
        self.reads += 1
        img = Image.fromarray(self.arrays[i])
        return (self.transform(img) if self.transform else img), self.targets[i]


@pytest.fixture
def toy_faces():
    return ToyFaces
