"""``none``: no detection, the whole image is one face (for pre-cropped faces). Importing this module registers it."""

from __future__ import annotations

from typing import Any

import numpy as np

from ferkit.detect.base import DEFAULT_MAX_SIDE, Face, FaceDetector
from ferkit.detect.registry import WeightsArg, register_detector
from ferkit.image import to_rgb_uint8


class WholeImageDetector(FaceDetector):
    """``none``: the whole image is one face with score 1.0 and no landmarks (for pre-cropped faces)."""

    name = "none"
    default_score_threshold = 0.0

    def __init__(self, *, score_threshold: float | None = None, max_side: int | None = DEFAULT_MAX_SIDE,
                 **options: Any):
        super().__init__(score_threshold=score_threshold, max_side=max_side, **options)

    def detect(self, image: np.ndarray, *, channel_order: str = "rgb") -> list[Face]:
        h, w = to_rgb_uint8(image, channel_order=channel_order).shape[:2]
        return [Face(box=(0.0, 0.0, float(w), float(h)), score=1.0, landmarks=None)]


def build_none(weights: WeightsArg, *, device: str = "cpu", trust_checkpoint: bool = False,
               **kw: Any) -> FaceDetector:
    if weights is not None:
        raise ValueError("detector 'none' takes no weights")
    return WholeImageDetector(**kw)


register_detector("none", build_none, description="no detection: the whole image is one face (pre-cropped faces)")
