"""Detector registry: ``create_detector(name, ...)`` and ``list_detectors()``."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ferkit.detect.base import DEFAULT_MAX_SIDE, FaceDetector, WholeImageDetector

WeightsArg = str | os.PathLike | Mapping[str, Any] | Sequence[str | os.PathLike] | None


@dataclass(frozen=True)
class DetectorEntry:
    """A registered detector: ``build(weights, trust=..., **kwargs)`` gets the resolved weights (or None) and
    whether a weights file may be fully unpickled."""

    name: str
    build: Callable[..., FaceDetector]
    assets: tuple[str, ...]
    landmarks: bool
    description: str


def _resolve_device(device: str) -> str:
    from ferkit.device import resolve_device

    return str(resolve_device(device))


def _state_dict(source: str | os.PathLike | Mapping[str, Any], trust: bool = False) -> dict[str, Any]:
    """A state dict from a path (read with ``weights_only`` unless ``trust``) or a mapping; ``module.`` prefixes
    stripped."""
    from ferkit.checkpoint import read_checkpoint, unwrap_state_dict

    ckpt = source if isinstance(source, Mapping) else read_checkpoint(source, trust=trust)
    return unwrap_state_dict(ckpt)


def _build_yunet(weights: WeightsArg, *, trust: bool = False, **kw: Any) -> FaceDetector:
    from ferkit.detect.opencv import YuNetDetector

    path = weights or packaged_yunet() or _fetch("yunet")
    if not Path(path).is_file():
        raise FileNotFoundError(f"YuNet ONNX file not found: {path}")
    return YuNetDetector(path, **kw)


def _build_retinaface(weights: WeightsArg, *, trust: bool = False, **kw: Any) -> FaceDetector:
    from ferkit.detect.retinaface import RetinaFaceDetector

    return RetinaFaceDetector(_state_dict(weights or _fetch("retinaface_mnet025"), trust), **kw)


def _build_mtcnn(weights: WeightsArg, *, trust: bool = False, **kw: Any) -> FaceDetector:
    from ferkit.detect.mtcnn import MTCNNDetector

    return MTCNNDetector({k: _state_dict(v, trust) for k, v in _mtcnn_sources(weights).items()}, **kw)


def _mtcnn_sources(weights: WeightsArg) -> dict[str, Any]:
    """``{"pnet", "rnet", "onet"}`` -> path or state dict, from a folder, a mapping, a 3-sequence or the cache."""
    keys = ("pnet", "rnet", "onet")
    if weights is None:
        return {k: _fetch(f"mtcnn_{k}") for k in keys}
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


def _build_haar(weights: WeightsArg, *, trust: bool = False, **kw: Any) -> FaceDetector:
    from ferkit.detect.opencv import HaarDetector

    if weights is not None:
        kw["cascade"] = str(weights)
    return HaarDetector(**kw)


def _build_none(weights: WeightsArg, *, device: str = "cpu", trust: bool = False, **kw: Any) -> FaceDetector:
    if weights is not None:
        raise ValueError("detector 'none' takes no weights")
    return WholeImageDetector(**kw)


def packaged_yunet() -> Path | None:
    """The YuNet ONNX file shipped inside the package (MIT / Apache-2.0, 232 KB; see NOTICE), if present."""
    from importlib.resources import files

    path = Path(str(files("ferkit") / "resources" / "detectors" / "face_detection_yunet_2023mar.onnx"))
    return path if path.is_file() else None


def _fetch(asset: str) -> Path:
    """A detector's weights from the cache (or a verified download); when that fails, the error also names the
    detectors that need no download."""
    from ferkit.errors import WeightsError
    from ferkit.hub import get_weights

    try:
        return get_weights(asset)
    except WeightsError as e:
        raise WeightsError(f"{e} Or use a detector that needs no download: --detector yunet (its weights ship with "
                           "ferkit) or --detector haar (OpenCV's cascade).") from e


_DETECTORS: dict[str, DetectorEntry] = {e.name: e for e in (
    DetectorEntry("yunet", _build_yunet, ("yunet",), True,
                  "YuNet 2023mar via cv2.FaceDetectorYN (needs OpenCV; weights ship with ferkit)"),
    DetectorEntry("retinaface", _build_retinaface, ("retinaface_mnet025",), True,
                  "RetinaFace MobileNet-0.25 (PyTorch, biubug6 weights)"),
    DetectorEntry("mtcnn", _build_mtcnn, ("mtcnn_pnet", "mtcnn_rnet", "mtcnn_onet"), True,
                  "MTCNN P/R/O-Net cascade (PyTorch, facenet-pytorch weights)"),
    DetectorEntry("haar", _build_haar, (), False,
                  "OpenCV Haar frontal-face cascade (ships with OpenCV 4, no download)"),
    DetectorEntry("none", _build_none, (), False, "no detection: the whole image is one face (pre-cropped faces)"),
)}


def list_detectors() -> list[str]:
    """Names accepted by :func:`create_detector`."""
    return list(_DETECTORS)


def get_detector_entry(name: str) -> DetectorEntry:
    if name not in _DETECTORS:
        raise ValueError(f"unknown face detector {name!r}; expected one of {', '.join(_DETECTORS)}")
    return _DETECTORS[name]


def create_detector(name: str, *, weights: WeightsArg = None, device: str = "cpu", score_threshold: float | None = None,
                    max_side: int | None = DEFAULT_MAX_SIDE, trust_checkpoint: bool = False,
                    **options: Any) -> FaceDetector:
    """Create a face detector by name.

    Args:
        name: ``yunet``, ``retinaface``, ``mtcnn``, ``haar`` or ``none`` (:func:`list_detectors`).
        weights: explicit weights (wins over the cache): a path (``yunet``, ``retinaface``; a cascade XML for
            ``haar``), a state dict (``retinaface``), or for ``mtcnn`` a folder / ``{"pnet","rnet","onet"}`` mapping /
            three paths. None resolves the files through the weights registry (cache, else a verified download;
            offline mode respected).
        device: ``cpu``, ``cuda[:i]`` or ``auto`` (PyTorch detectors; the OpenCV ones run on the CPU).
        score_threshold: minimum score kept (detector default when None).
        max_side: images whose longer side exceeds this are downscaled for detection (boxes are mapped back).
        trust_checkpoint: allow full unpickling of a PyTorch weights file holding Python objects (trusted files only).
        **options: detector-specific settings (see each detector class, e.g. ``min_face_size`` for ``mtcnn``).

    Raises:
        ValueError: unknown name or bad option value. TypeError: unknown option. ImportError: OpenCV missing.
        ferkit.errors.WeightsError: weights unavailable (offline and not cached, failed download).
    """
    entry = get_detector_entry(name)
    return entry.build(weights, trust=trust_checkpoint, device=_resolve_device(device), score_threshold=score_threshold,
                       max_side=max_side, **options)
