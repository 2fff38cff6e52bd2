"""The JSON sidecar next to an exported model: everything needed to feed it and read its output.

``model.onnx`` -> ``model.onnx.json``::

    {"format": "ferkit.onnx/1", "model": "poster_v2", "family": "poster_v2", "label_names": [...],
     "num_classes": 7, "data_config": {"input_size": 224, "mean": [...], "std": [...], "interpolation": "bilinear",
     "family": "poster_v2"}, "input": "images", "output": "logits", "opset": 17, "sha256": "...", ...}
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ferkit.checkpoint import atomic_write_bytes
from ferkit.errors import CheckpointError

FORMAT = "ferkit.onnx/1"
REQUIRED = ("label_names", "data_config")


def sidecar_path(model_path: str | os.PathLike) -> Path:
    """``model.onnx`` -> ``model.onnx.json``."""
    p = Path(model_path)
    return p.with_name(p.name + ".json")


def write_sidecar(model_path: str | os.PathLike, meta: dict[str, Any]) -> Path:
    """Atomically write the sidecar of ``model_path``; returns its path."""
    path = sidecar_path(model_path)
    data = (json.dumps({"format": FORMAT, **meta}, indent=2) + "\n").encode()
    atomic_write_bytes(path, lambda f: f.write(data))
    return path


def read_sidecar(model_path: str | os.PathLike) -> dict[str, Any]:
    """Read and check the sidecar of ``model_path``.

    Raises:
        FileNotFoundError: the model file is missing. CheckpointError: sidecar missing, unreadable or incomplete.
    """
    model_path = Path(model_path)
    if not model_path.is_file():
        raise FileNotFoundError(f"exported model not found: {model_path}")
    path = sidecar_path(model_path)
    if not path.is_file():
        raise CheckpointError(f"{model_path} has no metadata file {path.name} next to it; ferkit needs it for the "
                              "label names and preprocessing (re-export with `ferkit export onnx`)")
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise CheckpointError(f"cannot read {path}: {e}") from e
    missing = [k for k in REQUIRED if k not in meta]
    if meta.get("format") != FORMAT or missing:
        raise CheckpointError(f"{path} is not a ferkit export sidecar (format {meta.get('format')!r}, "
                              f"missing {missing})")
    if len(meta["label_names"]) != meta.get("num_classes", len(meta["label_names"])):
        raise CheckpointError(f"{path}: num_classes does not match the label names")
    return meta
