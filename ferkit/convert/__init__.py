"""Converters from foreign weight formats (dlib .dat, TFLite, OpenVINO IR) to ferkit state dicts.

``detect_format(path)`` recognises a file; ``convert(path)`` returns ``(state_dict, info)`` where ``info`` holds the
format, the ferkit module the tensors fit (``model``), the source SHA-256 and the licence.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ferkit.errors import WeightsError

#: format name -> (stream / module the tensors fit, licence note)
FORMATS = {
    "dlib_dat": ("dlib_resnet", "CC0-1.0"),
    "facemesh_tflite": ("facemesh", "Apache-2.0"),
    "mobilefacenet_ir": ("mobilefacenet", "none stated: import-only, never redistributed"),
}


def _detectors() -> list[tuple[str, Callable[[Path], bool]]]:
    from ferkit.convert.dlib_dat import is_dlib_dnn
    from ferkit.convert.facemesh import is_facemesh_tflite
    from ferkit.convert.mobilefacenet_ir import is_mobilefacenet_ir

    return [("dlib_dat", is_dlib_dnn), ("facemesh_tflite", is_facemesh_tflite),
            ("mobilefacenet_ir", is_mobilefacenet_ir)]


def detect_format(path: str | os.PathLike) -> str | None:
    """``"dlib_dat"``, ``"facemesh_tflite"``, ``"mobilefacenet_ir"`` (the .xml, the .bin or their folder), or None."""
    p = Path(path)
    for name, check in _detectors():
        try:
            if check(p):
                return name
        except (OSError, ValueError):
            continue
    return None


def convert(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Convert a foreign weight file; raises :class:`WeightsError` naming the formats understood."""
    fmt = detect_format(path)
    if fmt is None:
        raise WeightsError(f"{path}: not a weight format ferkit converts (dlib .dat face-recognition ResNet, "
                           "MediaPipe FaceMesh .tflite, OpenVINO IR of the 68-point MobileFaceNet)")
    if fmt == "dlib_dat":
        from ferkit.convert.dlib_dat import convert_dlib_resnet as fn
    elif fmt == "facemesh_tflite":
        from ferkit.convert.facemesh import convert_facemesh as fn
    else:
        from ferkit.convert.mobilefacenet_ir import convert_mobilefacenet_ir as fn
    state, info = fn(path)
    info = dict(info, format=fmt, model=FORMATS[fmt][0])
    return state, info
