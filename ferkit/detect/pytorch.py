"""The PyTorch detectors, RetinaFace and MTCNN: their registration and weights handling.

Importing this module registers both without importing torch: the networks (``ferkit/detect/retinaface.py``,
``ferkit/detect/mtcnn.py``) are imported when a detector is created.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ferkit.detect.base import FaceDetector
from ferkit.detect.registry import WeightsArg, fetch_weights, read_state_dict, register_detector

MTCNN_NETS = ("pnet", "rnet", "onet")


def build_retinaface(weights: WeightsArg, *, trust_checkpoint: bool = False, **kw: Any) -> FaceDetector:
    from ferkit.detect.retinaface import RetinaFaceDetector

    source = weights or fetch_weights("retinaface_mnet025", detector="retinaface")
    return RetinaFaceDetector(read_state_dict(source, trust_checkpoint=trust_checkpoint), **kw)


def build_mtcnn(weights: WeightsArg, *, trust_checkpoint: bool = False, **kw: Any) -> FaceDetector:
    from ferkit.detect.mtcnn import MTCNNDetector

    return MTCNNDetector({k: read_state_dict(v, trust_checkpoint=trust_checkpoint)
                          for k, v in mtcnn_sources(weights).items()}, **kw)


def mtcnn_sources(weights: WeightsArg) -> dict[str, Any]:
    """``{"pnet", "rnet", "onet"}`` -> path or state dict, from a folder, a mapping, a 3-sequence or the cache."""
    keys = MTCNN_NETS
    if weights is None:
        return {k: fetch_weights(f"mtcnn_{k}", detector="mtcnn") for k in keys}
    if isinstance(weights, Mapping):
        missing = [k for k in keys if k not in weights]
        if missing:
            raise ValueError(f"mtcnn weights mapping needs keys {keys}; missing {missing}")
        return {k: weights[k] for k in keys}
    if isinstance(weights, (str, os.PathLike)):
        folder = Path(weights)
        if not folder.is_dir():
            raise FileNotFoundError(f"mtcnn weights: {folder} is not a folder holding pnet/rnet/onet files")
        return {k: _find_in_folder(folder, k) for k in keys}
    if len(weights) != 3:
        raise ValueError("mtcnn weights: pass a folder, a {'pnet','rnet','onet'} mapping or three paths")
    return dict(zip(keys, weights))


def _find_in_folder(folder: Path, key: str) -> Path:
    for name in (f"mtcnn_{key}.pt", f"{key}.pt"):
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(f"mtcnn weights: neither mtcnn_{key}.pt nor {key}.pt in {folder}")


register_detector("retinaface", build_retinaface, assets=("retinaface_mnet025",), landmarks=True, needs_download=True,
                  description="RetinaFace MobileNet-0.25 (PyTorch, biubug6 weights)")
register_detector("mtcnn", build_mtcnn, assets=tuple(f"mtcnn_{k}" for k in MTCNN_NETS), landmarks=True,
                  needs_download=True, description="MTCNN P/R/O-Net cascade (PyTorch, facenet-pytorch weights)")
