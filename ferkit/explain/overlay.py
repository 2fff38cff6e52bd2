"""Heat-map rendering without extra dependencies: a jet colour map, alpha blending, and pasting a face-crop map
back into the photo through the crop's affine transform."""

from __future__ import annotations

import numpy as np
from PIL import Image

from ferkit.detect.align import invert_affine

# jet: dark blue -> blue -> cyan -> yellow -> red -> dark red
_JET_X = np.array([0.0, 0.11, 0.36, 0.64, 0.89, 1.0])
_JET_RGB = np.array([[0, 0, 0.5], [0, 0, 1], [0, 1, 1], [1, 1, 0], [1, 0, 0], [0.5, 0, 0]])


def colorize(heat: np.ndarray) -> np.ndarray:
    """(H, W) values in [0, 1] -> (H, W, 3) uint8 RGB with the jet colour map (values are clipped)."""
    v = np.clip(np.nan_to_num(np.asarray(heat, dtype=np.float64)), 0.0, 1.0)
    rgb = np.stack([np.interp(v, _JET_X, _JET_RGB[:, c]) for c in range(3)], axis=-1)
    return np.rint(rgb * 255).astype(np.uint8)


def blend(image: np.ndarray, heat: np.ndarray, *, alpha: float = 0.5, mask: np.ndarray | None = None) -> np.ndarray:
    """Overlay ``heat`` (H, W) in [0, 1] on ``image`` (H, W, 3) uint8; ``mask`` (H, W) in [0, 1] limits where."""
    a = alpha * (np.ones(heat.shape) if mask is None else np.clip(mask, 0.0, 1.0))
    out = image.astype(np.float64) * (1 - a[..., None]) + colorize(heat).astype(np.float64) * a[..., None]
    return np.rint(out).astype(np.uint8)


def resize_map(heat: np.ndarray, size: int) -> np.ndarray:
    """(h, w) float map -> (size, size), bilinear."""
    pil = Image.fromarray(np.asarray(heat, dtype=np.float32), mode="F")
    return np.asarray(pil.resize((size, size), Image.BILINEAR), dtype=np.float64)


def smooth(heat: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of a float map (separable, reflect padding); ``sigma`` in pixels (<= 0: unchanged)."""
    if sigma <= 0:
        return heat
    r = max(1, int(3 * sigma))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    padded = np.pad(heat, r, mode="reflect")
    rows = np.apply_along_axis(lambda v: np.convolve(v, k, mode="valid"), 1, padded)
    return np.apply_along_axis(lambda v: np.convolve(v, k, mode="valid"), 0, rows)


def paste(heat: np.ndarray, matrix: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Map a crop-space heat map (S, S) into image space.

    Args:
        heat: (S, S) map over the face crop. matrix: 2x3 affine crop pixels -> image pixels (the crop's warp).
        shape: (H, W) of the image.

    Returns:
        (H, W) heat values and (H, W) coverage in [0, 1] (1 inside the crop's footprint, 0 outside).
    """
    h, w = shape
    coeffs = tuple(invert_affine(np.asarray(matrix, dtype=np.float64)).reshape(-1))  # image pixel -> crop pixel
    def warp(a: np.ndarray) -> np.ndarray:
        pil = Image.fromarray(np.asarray(a, dtype=np.float32), mode="F")
        return np.asarray(pil.transform((w, h), Image.AFFINE, coeffs, resample=Image.BILINEAR, fillcolor=0.0),
                          dtype=np.float64)

    return warp(heat), warp(np.ones_like(heat))
