"""``Face`` records and the ``FaceDetector`` base class shared by every backend.

A backend implements :meth:`FaceDetector._detect` on an RGB uint8 image that is already downscaled to at most
``max_side`` pixels and returns raw arrays in that image's pixels; the base class validates/converts the input,
maps the results back to the original pixels, applies the score threshold and sorts them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ferkit.image import resize_max_side, to_rgb_uint8

log = logging.getLogger(__name__)

#: Default limit on the longer image side used for detection (larger images are downscaled, boxes mapped back).
DEFAULT_MAX_SIDE = 1280

#: Order of the 5 landmarks (as seen in the image: "left eye" is the eye with the smaller x in a frontal face).
LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")


@dataclass
class Face:
    """One detected face, in the pixel coordinates of the image given to ``detect``.

    Attributes:
        box: ``(x1, y1, x2, y2)`` floats; may extend slightly past the image border for faces cut by it.
        score: detector confidence (in [0, 1] for the neural detectors; 1.0 for ``none``; see docs for ``haar``).
        landmarks: (5, 2) float array of (x, y) in :data:`LANDMARK_NAMES` order, or ``None``.
    """

    box: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray | None = None

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    @property
    def area(self) -> float:
        return max(0.0, self.width) * max(0.0, self.height)

    @property
    def xywh(self) -> tuple[float, float, float, float]:
        """The box as ``(x, y, width, height)``."""
        return (self.box[0], self.box[1], self.width, self.height)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form: ``box``, ``xywh``, ``score``, ``landmarks`` (list of [x, y] or None)."""
        lm = None if self.landmarks is None else self.landmarks.tolist()
        return {"box": [float(v) for v in self.box], "xywh": [float(v) for v in self.xywh], "score": float(self.score),
                "landmarks": lm}


class FaceDetector:
    """Base class. ``detect(image)`` -> faces sorted by decreasing score (ties: larger first); no face -> ``[]``.

    Args:
        score_threshold: minimum score kept (backend default when None).
        max_side: longer-side limit for detection; larger images are downscaled first (None: never).
    """

    name: str = ""
    default_score_threshold: float = 0.5
    has_landmarks: bool = False

    def __init__(self, *, score_threshold: float | None = None, max_side: int | None = DEFAULT_MAX_SIDE,
                 **options: Any):
        if options:  # detectors pass on the keywords they do not know, so a typo is named, not swallowed
            raise TypeError(f"unknown option(s) for detector {self.name!r}: {sorted(options)}")
        self.score_threshold = self.default_score_threshold if score_threshold is None else float(score_threshold)
        if not 0.0 <= self.score_threshold <= 1.0:
            raise ValueError(f"score_threshold must be in [0, 1], got {score_threshold}")
        if max_side is not None and int(max_side) < 32:
            raise ValueError(f"max_side must be None or at least 32 pixels, got {max_side}")
        self.max_side = None if max_side is None else int(max_side)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(score_threshold={self.score_threshold}, max_side={self.max_side})"

    def detect(self, image: np.ndarray, *, channel_order: str = "rgb") -> list[Face]:
        """Detect faces in one image.

        Args:
            image: RGB uint8 (H, W, 3) — other forms (grayscale, RGBA, 16-bit, float, PIL) are converted by
                :func:`ferkit.image.to_rgb_uint8`; pass ``channel_order="bgr"`` for OpenCV arrays.

        Returns:
            Faces with boxes and landmarks in the original image's pixels, best first; ``[]`` when none.
        """
        rgb = to_rgb_uint8(image, channel_order=channel_order)
        small, (sx, sy) = resize_max_side(rgb, self.max_side)
        boxes, scores, landmarks = self._detect(small)
        return self._to_faces(boxes, scores, landmarks, sx, sy)

    def detect_batch(self, images: Iterable[np.ndarray], *, skip_errors: bool = False) -> list[list[Face] | None]:
        """Detect faces in several images (one by one). With ``skip_errors`` a bad image gives ``None`` and a warning
        instead of stopping the batch."""
        out: list[list[Face] | None] = []
        for i, image in enumerate(images):
            try:
                out.append(self.detect(image))
            except ValueError as e:
                if not skip_errors:
                    raise ValueError(f"image {i}: {e}") from e
                log.warning("image %d skipped: %s", i, e)
                out.append(None)
        return out

    def _detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Backend hook: boxes (N, 4) x1y1x2y2, scores (N,), landmarks (N, 5, 2) or None, in ``image`` pixels."""
        raise NotImplementedError

    def _to_faces(self, boxes: np.ndarray, scores: np.ndarray, landmarks: np.ndarray | None,
                  sx: float, sy: float) -> list[Face]:
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4) / np.array([sx, sy, sx, sy])
        scores = np.asarray(scores, dtype=np.float64).reshape(-1)
        if landmarks is not None:
            landmarks = np.asarray(landmarks, dtype=np.float64).reshape(-1, 5, 2) / np.array([sx, sy])
        keep = scores >= self.score_threshold
        areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        order = [i for i in np.lexsort((-areas, -scores)) if keep[i]]
        return [Face(box=tuple(float(v) for v in boxes[i]), score=float(scores[i]),
                     landmarks=None if landmarks is None else landmarks[i].copy()) for i in order]


def empty_result(with_landmarks: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Raw result with no detection."""
    return np.zeros((0, 4)), np.zeros((0,)), (np.zeros((0, 5, 2)) if with_landmarks else None)

