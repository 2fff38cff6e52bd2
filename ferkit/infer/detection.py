"""The recognizer's face detector: a registered name, ``skip`` (= ``none``), a detector object, or a callable."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ferkit.detect.base import Face

ALIASES = {"skip": "none", None: "none"}


class CallableDetector:
    """Wraps ``fn(rgb_uint8) -> faces`` where each face is a :class:`Face`, a box ``(x1, y1, x2, y2)`` or
    ``(x1, y1, x2, y2, score)``, or a dict with ``box`` (and optional ``score`` / ``landmarks``)."""

    name = "callable"

    def __init__(self, fn: Callable[[np.ndarray], Sequence[Any]]):
        self.fn = fn

    def detect(self, image: np.ndarray) -> list[Face]:
        return [as_face(f) for f in self.fn(image)]


def as_face(face: Any) -> Face:
    """A :class:`Face` from a Face, a dict or a 4/5-number box (score 1.0 when not given).

    Raises:
        ValueError: anything else, or a box with x2 <= x1 / y2 <= y1.
    """
    if isinstance(face, Face):
        return face
    if isinstance(face, dict):
        lm = face.get("landmarks")
        f = Face(box=tuple(float(v) for v in face["box"]), score=float(face.get("score", 1.0)),
                 landmarks=None if lm is None else np.asarray(lm, dtype=np.float64).reshape(5, 2))
    else:
        vals = [float(v) for v in np.asarray(face, dtype=np.float64).reshape(-1)]
        if len(vals) not in (4, 5):
            raise ValueError(f"a face box must be (x1, y1, x2, y2) or (x1, y1, x2, y2, score), got {vals}")
        f = Face(box=tuple(vals[:4]), score=vals[4] if len(vals) == 5 else 1.0)
    x1, y1, x2, y2 = f.box
    if not (x2 > x1 and y2 > y1):
        raise ValueError(f"face box must have x2 > x1 and y2 > y1, got {list(f.box)}")
    return f


def make_detector(detector: Any, *, weights: Any = None, device: str = "cpu", score_threshold: float | None = None,
                  max_side: int | None = None, **options: Any) -> tuple[Any, str]:
    """Return ``(detector, name)``. Strings go to :func:`ferkit.detect.create_detector`; objects with ``detect`` are
    used as they are; other callables are wrapped in :class:`CallableDetector`."""
    if detector is None or isinstance(detector, str):
        name = ALIASES.get(detector, detector)
        from ferkit.detect import DEFAULT_MAX_SIDE, create_detector

        det = create_detector(name, weights=weights, device=device, score_threshold=score_threshold,
                              max_side=DEFAULT_MAX_SIDE if max_side is None else max_side, **options)
        return det, name
    if hasattr(detector, "detect"):
        return detector, str(getattr(detector, "name", type(detector).__name__))
    if callable(detector):
        return CallableDetector(detector), "callable"
    raise TypeError(f"detector must be a name, an object with .detect(image) or a callable; got {type(detector)}")
