"""From an image and its faces to the model's input batch: crop each face like the training images, then apply the
model family's evaluation transform (``ferkit.data.transforms``: resize, to tensor, normalise).

Crop presets (``ferkit.detect.align.CROP_PRESETS``): ``square`` (square box + 10 % margin), ``rafdb_aligned``
(five-point similarity alignment, margin 0.2), ``affectnet`` (square box + 10 %), ``none`` (the box resized to a
square). With detector ``none`` and crop ``none`` the whole image goes through the transform unchanged, which is exactly
the official evaluation pipeline for pre-cropped faces (``Resize((224, 224))``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from ferkit.detect.align import CROP_PRESETS, box_matrix, crop_face, five_point_matrix
from ferkit.detect.base import Face


def resolve_crop(crop: str | Mapping[str, Any], *, detector_name: str, pretrained_crop: str | None) -> dict[str, Any]:
    """Crop settings ``{"preset", "method", "margin"}``.

    ``auto``: ``none`` when the detector is ``none`` (the input is the face), else the preset of the pretrained
    weights when known, else ``square``. A mapping gives ``method`` and ``margin`` directly.
    """
    if isinstance(crop, Mapping):
        return {"preset": "custom", "method": crop.get("method", "square"), "margin": crop.get("margin")}
    if crop == "auto":
        crop = "none" if detector_name == "none" else (pretrained_crop or "square")
    if crop not in CROP_PRESETS:
        raise ValueError(f"unknown crop {crop!r}; expected 'auto', one of {', '.join(CROP_PRESETS)} or a dict with "
                         "'method' and 'margin'")
    return {"preset": crop, **CROP_PRESETS[crop]}


class Preprocessor:
    """Face crops -> normalised tensors for one model.

    Args:
        data_config: the model's ``data_config`` (``input_size``, ``mean``, ``std``, ``interpolation``, ``family``).
        crop: resolved crop settings (:func:`resolve_crop`).
    """

    def __init__(self, data_config: Mapping[str, Any], crop: Mapping[str, Any]):
        from ferkit.models.transforms import build_eval_transform

        self.size = int(data_config["input_size"] if not isinstance(data_config["input_size"], Sequence)
                        else data_config["input_size"][-1])
        self.crop = dict(crop)
        self.transform = build_eval_transform(dict(data_config))

    def crop_face(self, rgb: np.ndarray, face: Face) -> np.ndarray:
        """The face crop as RGB uint8; the whole image (any size) when the crop is ``resize`` of the full frame."""
        if self._is_whole_image(rgb, face):
            return rgb
        return crop_face(rgb, face, size=self.size, method=self.crop["method"], margin=self.crop["margin"])

    def crop_matrix(self, rgb: np.ndarray, face: Face) -> np.ndarray:
        """2x3 affine map from crop pixels (``size`` x ``size``) to image pixels, as :meth:`crop_face` uses it."""
        if self._is_whole_image(rgb, face):
            h, w = rgb.shape[:2]
            return np.array([[w / self.size, 0.0, 0.0], [0.0, h / self.size, 0.0]])
        method, margin = self.crop["method"], self.crop["margin"]
        if method == "five_point" and face.landmarks is not None:
            return five_point_matrix(np.asarray(face.landmarks, dtype=np.float64), self.size, margin or 0.0)
        margin = 0.1 if margin is None else margin
        return box_matrix(np.asarray(face.box, dtype=np.float64), self.size, margin, keep_aspect=method != "resize")

    def to_tensor(self, crop: np.ndarray) -> torch.Tensor:
        """RGB uint8 crop -> (3, S, S) float32 normalised (resized to S first when needed)."""
        from PIL import Image

        return self.transform(Image.fromarray(crop))

    def batch(self, crops: Sequence[np.ndarray]) -> torch.Tensor:
        """(N, 3, S, S) float32 from N crops."""
        return torch.stack([self.to_tensor(c) for c in crops])

    def _is_whole_image(self, rgb: np.ndarray, face: Face) -> bool:
        h, w = rgb.shape[:2]
        full = np.allclose(np.asarray(face.box, dtype=np.float64), (0.0, 0.0, w, h))
        return self.crop["method"] == "resize" and not self.crop.get("margin") and full
