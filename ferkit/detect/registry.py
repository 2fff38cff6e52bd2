"""Detector registry: ``register_detector(name, builder)``, ``create_detector(name, ...)``, ``list_detectors()``.

A detector is one module that calls :func:`register_detector` when it is imported. The built-in ones are registered
by the modules that ``ferkit/detect/__init__.py`` imports: ``opencv`` (yunet, haar), ``pytorch`` (retinaface, mtcnn) and
``whole`` (none). A plugin registers the same way from its own module (see docs/detection.md, "Add a detector").
This module imports nothing heavy: builders import their libraries (OpenCV, torch) when they run.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ferkit.detect.base import DEFAULT_MAX_SIDE, FaceDetector

WeightsArg = str | os.PathLike | Mapping[str, Any] | Sequence[str | os.PathLike] | None

#: ``builder(weights, *, device, trust_checkpoint, score_threshold, max_side, **options) -> FaceDetector``
DetectorBuilder = Callable[..., FaceDetector]


@dataclass(frozen=True)
class DetectorEntry:
    """A registered detector.

    Attributes:
        name: what :func:`create_detector` and ``--detector`` accept.
        build: ``build(weights, *, device, trust_checkpoint, score_threshold, max_side, **options)`` returns the
            detector; ``weights`` is the caller's ``weights=`` (None: the builder finds its own, e.g. through
            :func:`fetch_weights`), ``device`` is resolved (``"cpu"``, ``"cuda:0"``, ...), ``trust_checkpoint`` says
            whether a PyTorch weights file may be fully unpickled, ``options`` are the detector-specific keywords.
        description: one line for help texts and ``ferkit detect --help``.
        assets: weights-registry assets the detector uses (``ferkit weights list``).
        landmarks: whether its faces carry the 5 landmarks.
        needs_download: ``weights=None`` fetches files through the weights cache (so offline mode may stop it).
    """

    name: str
    build: DetectorBuilder
    description: str = ""
    assets: tuple[str, ...] = ()
    landmarks: bool = False
    needs_download: bool = False


_DETECTORS: dict[str, DetectorEntry] = {}


def register_detector(name: str, builder: DetectorBuilder, *, description: str = "", assets: Sequence[str] = (),
                      landmarks: bool = False, needs_download: bool = False, replace: bool = False) -> DetectorEntry:
    """Make ``name`` available to :func:`create_detector`, ``ferkit.load(detector=name)`` and ``--detector name``.

    Args:
        name: detector name (unique; ``replace=True`` overrides an existing one).
        builder: ``builder(weights, *, device, trust_checkpoint, score_threshold, max_side, **options)`` ->
            :class:`~ferkit.detect.FaceDetector` (see :class:`DetectorEntry`). Import heavy libraries inside it, so
            that registering stays cheap.
        description, assets, landmarks, needs_download: see :class:`DetectorEntry`.

    Returns:
        The new :class:`DetectorEntry`.

    Raises:
        ValueError: an empty name or one already registered. TypeError: a builder that is not callable.
    """
    if not isinstance(name, str) or not name.strip() or name != name.strip():
        raise ValueError(f"detector name must be a non-empty string without surrounding spaces, got {name!r}")
    if not callable(builder):
        raise TypeError(f"builder of detector {name!r} must be callable, got {type(builder).__name__}")
    if name in _DETECTORS and not replace:
        raise ValueError(f"detector {name!r} is already registered (pass replace=True to override it)")
    entry = DetectorEntry(name, builder, description, tuple(assets), bool(landmarks), bool(needs_download))
    _DETECTORS[name] = entry
    return entry


def unregister_detector(name: str) -> None:
    """Remove a registered detector (e.g. a plugin's, in tests). Unknown names raise ``ValueError``."""
    get_detector_entry(name)
    del _DETECTORS[name]


def list_detectors() -> list[str]:
    """Names accepted by :func:`create_detector`, in registration order (built-ins first)."""
    return list(_DETECTORS)


def get_detector_entry(name: str) -> DetectorEntry:
    """The :class:`DetectorEntry` of ``name``; unknown names raise ``ValueError`` listing the registered ones."""
    if name not in _DETECTORS:
        raise ValueError(f"unknown face detector {name!r}; expected one of {', '.join(_DETECTORS)}")
    return _DETECTORS[name]


def create_detector(name: str, *, weights: WeightsArg = None, device: str = "cpu", score_threshold: float | None = None,
                    max_side: int | None = DEFAULT_MAX_SIDE, trust_checkpoint: bool = False,
                    **options: Any) -> FaceDetector:
    """Create a face detector by name.

    Args:
        name: a registered name (:func:`list_detectors`; built in: ``yunet``, ``haar``, ``retinaface``, ``mtcnn``,
            ``none``).
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
    return entry.build(weights, device=_resolve_device(device), trust_checkpoint=trust_checkpoint,
                       score_threshold=score_threshold, max_side=max_side, **options)


def _resolve_device(device: str) -> str:
    from ferkit.device import resolve_device

    return str(resolve_device(device))


def fetch_weights(asset: str, *, detector: str | None = None) -> Path:
    """A weights-registry asset from the cache (or a verified download), for builders. When that fails, the error
    also names the registered detectors that need no download (other than ``detector``)."""
    from ferkit.errors import WeightsError
    from ferkit.hub import get_weights

    try:
        return get_weights(asset)
    except WeightsError as e:
        others = [n for n, entry in _DETECTORS.items() if not entry.needs_download and n != detector]
        if not others:
            raise
        raise WeightsError(f"{e} Or use a detector that needs no download: "
                           f"{' or '.join(f'--detector {n}' for n in others)}.") from e


def read_state_dict(source: str | os.PathLike | Mapping[str, Any], *, trust_checkpoint: bool = False
                    ) -> dict[str, Any]:
    """A state dict from a path (read with ``weights_only`` unless ``trust_checkpoint``) or a mapping; ``module.``
    prefixes stripped. For builders of PyTorch detectors."""
    from ferkit.checkpoint import read_checkpoint, unwrap_state_dict

    ckpt = source if isinstance(source, Mapping) else read_checkpoint(source, trust=trust_checkpoint)
    return unwrap_state_dict(ckpt)
