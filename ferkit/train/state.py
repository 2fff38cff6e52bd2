"""Seeding, RNG snapshots and the training checkpoint layout.

A training checkpoint is a ferkit model checkpoint (``format``, ``model``, ``model_args``, ``label_names``,
``state_dict``, ``meta``) plus a ``training`` section, so ``create_model(name, checkpoint="last.pt")`` loads it and
``--resume`` continues it. Everything in it is a tensor or a plain container, readable with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import hashlib
import random
from typing import Any

import numpy as np
import torch

TRAINING_FORMAT = "ferkit.training/1"


def derive_seed(*parts: Any) -> int:
    """A 63-bit seed from any values (e.g. ``(seed, epoch, rank)``); stable across processes and Python versions."""
    digest = hashlib.sha256("/".join(str(p) for p in parts).encode()).hexdigest()
    return int(digest[:15], 16)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and every CUDA device)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def capture_rng() -> dict[str, Any]:
    """Python / NumPy / torch (and CUDA) generator states as tensors and plain values (``weights_only`` safe)."""
    version, py_state, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    out: dict[str, Any] = {
        "python": {"version": version, "state": torch.tensor(py_state, dtype=torch.int64), "gauss": gauss},
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def restore_rng(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng`."""
    py = state["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["state"].tolist()), py["gauss"]))
    npy = state["numpy"]
    np.random.set_state((npy["kind"], npy["keys"].numpy().astype(np.uint32), npy["pos"], npy["has_gauss"],
                         npy["cached"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def training_checkpoint(model_ckpt: dict[str, Any], training: dict[str, Any]) -> dict[str, Any]:
    """The model checkpoint dict with the training section added."""
    return {**model_ckpt, "training": {"format": TRAINING_FORMAT, **training}}


def training_section(ckpt: dict[str, Any], where: str) -> dict[str, Any]:
    """The ``training`` section of a checkpoint, or a ``CheckpointError`` explaining what the file is instead."""
    from ferkit.errors import CheckpointError

    section = ckpt.get("training")
    if not isinstance(section, dict) or section.get("format") != TRAINING_FORMAT:
        kind = "a ferkit model checkpoint (best.pt or a saved model)" if ckpt.get("format") else "not from ferkit"
        raise CheckpointError(f"{where} has no training state ({kind}); resume from a run folder or its last.pt")
    return section
