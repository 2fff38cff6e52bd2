"""Image conversion in one place: every ferkit image API takes RGB ``uint8`` arrays of shape (H, W, 3).

:func:`to_rgb_uint8` turns what users actually have into that form:

* grayscale (H, W) or (H, W, 1) -> the gray value repeated in R, G and B;
* gray + alpha (H, W, 2) and RGBA / BGRA (H, W, 4) arrays and PIL images with alpha -> composited on white, exactly
  as image files are read (:func:`ferkit.data.images.to_rgb`; an alpha that is 0 everywhere is ignored);
* ``uint16`` (16-bit PNG/TIFF) -> rounded ``value / 257`` (65535 -> 255);
* float in [0, 1] -> rounded ``value * 255``; ``bool`` -> 0 / 255;
* BGR (OpenCV's ``cv2.imread``) with ``channel_order="bgr"``;
* a ``PIL.Image`` of any mode.

Anything else (other integer types, floats outside [0, 1] or NaN, empty or 4-D arrays, 5+ channels) raises
``ValueError`` naming the problem and the expected form.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

ImageLike = Any  # np.ndarray | PIL.Image.Image


def to_rgb_uint8(image: ImageLike, *, channel_order: str = "rgb") -> np.ndarray:
    """Convert an image to a C-contiguous RGB ``uint8`` array (H, W, 3).

    Args:
        image: ndarray (H, W), (H, W, 1|2|3|4) of uint8 / uint16 / float in [0, 1] / bool, or a PIL image.
        channel_order: ``"rgb"`` (default) or ``"bgr"`` for colour arrays read with OpenCV (BGR / BGRA).

    Raises:
        ValueError: unsupported type, shape, dtype or value range.
    """
    if channel_order not in ("rgb", "bgr"):
        raise ValueError(f"channel_order must be 'rgb' or 'bgr', got {channel_order!r}")
    arr = _from_pil(image) if _is_pil(image) else image
    if not isinstance(arr, np.ndarray):
        raise ValueError("expected an image as a numpy array (H, W, 3) RGB uint8 or a PIL image, "
                         f"got {type(image).__name__}")
    arr = _channels_last(arr)
    arr = _to_uint8(arr)
    if channel_order == "bgr" and arr.shape[2] >= 3:
        arr = arr[:, :, [2, 1, 0, 3][: arr.shape[2]]]
    if arr.shape[2] in (2, 4):
        arr = _composite(arr)
    elif arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    return np.ascontiguousarray(arr)


def _composite(arr: np.ndarray) -> np.ndarray:
    """Grey + alpha or RGBA uint8 -> RGB, composited on white the way image files are decoded."""
    if (arr[:, :, -1] == 255).all():  # opaque: nothing to composite
        return np.repeat(arr[:, :, :1], 3, axis=2) if arr.shape[2] == 2 else arr[:, :, :3]
    from PIL import Image

    from ferkit.data.images import to_rgb

    return np.asarray(to_rgb(Image.fromarray(np.ascontiguousarray(arr))))  # (H, W, 2) -> LA, (H, W, 4) -> RGBA


def _is_pil(image: Any) -> bool:
    return type(image).__module__.startswith("PIL.")


def _from_pil(image: Any) -> np.ndarray:
    from ferkit.data.images import to_rgb  # one decoder for every Pillow mode (alpha composited on white)

    return np.asarray(to_rgb(image))


def _channels_last(arr: np.ndarray) -> np.ndarray:
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 2, 3, 4):
        raise ValueError(f"expected an image of shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4); got shape {arr.shape}"
                         " (for a batch, pass images one by one or use detect_batch)")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"image is empty (shape {arr.shape})")
    return arr


def _to_uint8(arr: np.ndarray) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == np.uint16:
        return ((arr.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8) * 255
    if np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all():
            raise ValueError("float image contains NaN or infinite values")
        lo, hi = float(arr.min()), float(arr.max())
        if lo < 0.0 or hi > 1.0:
            raise ValueError(f"float images must have values in [0, 1]; got range [{lo:.4g}, {hi:.4g}] "
                             "(convert 0..255 floats with .astype(np.uint8))")
        return np.rint(arr * 255.0).astype(np.uint8)
    raise ValueError(f"unsupported image dtype {arr.dtype}; expected uint8, uint16, bool or float in [0, 1]")


def load_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as RGB uint8 (H, W, 3): :func:`ferkit.data.images.load_image` (EXIF orientation, alpha
    composited on white, 16-bit scaled to 8 bits) as an array.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file is not a readable image (``ImageReadError``, a ``ValueError``).
    """
    from ferkit.data.images import load_image as decode

    if not os.path.isfile(path):
        raise FileNotFoundError(f"image not found: {path}")
    return np.asarray(decode(path))


def resize_max_side(image: np.ndarray, max_side: int | None) -> tuple[np.ndarray, tuple[float, float]]:
    """Downscale (never upscale) so that ``max(H, W) <= max_side``; return the image and the scales ``(sx, sy)``.

    ``x / sx``, ``y / sy`` map coordinates in the returned image back to the input. Uses PIL's antialiased bilinear
    filter, so a cv2 install is not needed.
    """
    h, w = image.shape[:2]
    if not max_side or max(h, w) <= max_side:
        return image, (1.0, 1.0)
    from PIL import Image

    scale = max_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    out = np.asarray(Image.fromarray(image).resize(size, Image.BILINEAR))
    return out, (size[0] / w, size[1] / h)
