"""Shared fixtures. Tests run on CPU with 2 threads; real-data tests skip when ../shared is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
_CANDIDATES = [REPO.parent / "shared", REPO.parent.parent / "shared"]  # ../shared (also from a git worktree)
SHARED = Path(os.environ.get("FERKIT_SHARED") or next((p for p in _CANDIDATES if p.is_dir()), _CANDIDATES[0]))
FER2013 = SHARED / "data" / "fer2013"
SHARED_WEIGHTS = SHARED / "weights"

torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture
def fer2013_root() -> Path:
    """The real FER2013 folder (train/<class>/*.jpg, val/<class>/*.jpg); skips when absent."""
    if not (FER2013 / "train").is_dir():
        pytest.skip(f"FER2013 not available at {FER2013}")
    return FER2013


@pytest.fixture
def shared_weights() -> Path:
    """Folder with real detector weights (YuNet, RetinaFace, MTCNN); skips when absent."""
    if not SHARED_WEIGHTS.is_dir():
        pytest.skip(f"shared weights not available at {SHARED_WEIGHTS}")
    return SHARED_WEIGHTS


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Never touch the user's cache: FERKIT_HOME points to a per-test temporary folder; no network by default."""
    monkeypatch.setenv("FERKIT_HOME", str(tmp_path_factory.mktemp("ferkit_home")))
    monkeypatch.setenv("FERKIT_OFFLINE", "1")
    torch.manual_seed(0)
