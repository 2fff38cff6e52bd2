"""Face crops for recognition models: square box with margin, 5-point similarity alignment, or plain resize.

Coordinates are continuous pixel coordinates (the image spans [0, W] x [0, H]), as produced by the detectors.
Every method is an affine map from the output square to the input image, warped with PIL (bilinear; when the face is
larger than the output, the region it covers is first resized with PIL's antialiasing filter, so down-scaling does
not alias). Pixels
outside the image are filled with ``fill`` (``border="constant"``, black by default) or by repeating the edge
(``border="edge"``). Grayscale, RGBA and 16-bit inputs are converted to RGB uint8 first.

**Template.** ``five_point`` maps the landmarks (left eye, right eye, nose, left and right mouth corner, as seen in
the image) onto the 112x112 ArcFace template of insightface (``face_align.py``, ``arcface_dst``; the 96x112
SphereFace template shifted by 8 px), scaled to ``size``. ``margin`` m shrinks the template about the image centre by
1 / (1 + 2m), i.e. adds m times the face size on every side: m = 0 is the tight ArcFace crop (forehead and chin cut).

**Which crop for which model** (:data:`CROP_PRESETS`; the recognizer picks one from the weights' config):

* ``rafdb_aligned`` — five-point, margin 0.2: RAF-DB's released "aligned" 100x100 faces were made by a similarity
  transform on 5 landmarks, showing the whole face with a little hair and background. The exact RAF-DB template is
  not published; margin 0.2 on the ArcFace template is ferkit's approximation. POSTER++ / MPA-FER RAF-DB weights.
* ``affectnet`` — square, margin 0.1: AffectNet's released faces are its face boxes cropped from the photo, not
  aligned. POSTER++ / MPA-FER AffectNet weights.
* ``square`` — square, margin 0.1: generic default when landmarks are unknown.
* ``none`` — the box resized to ``size`` x ``size`` without keeping the aspect ratio (= the official
  ``Resize((224, 224))``); use with detector ``none`` for images that are already face crops, or CAER-S frames.
* ``fer2013`` — square, margin 0: the framing of FER2013 / FER+ faces as YuNet sees them (on 495 FER+ Valid faces,
  YuNet's box is centred on the 48x48 crop and its longer side is 1.03x the crop's, median). ferkit's default model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ferkit.detect.base import Face
from ferkit.image import to_rgb_uint8

#: insightface's ArcFace 5-point template for 112x112 crops (x, y): left eye, right eye, nose, mouth left, mouth right.
ARCFACE_TEMPLATE_112 = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                                 [41.5493, 92.3655], [70.7299, 92.2041]])

#: Named crop settings (``method``, ``margin``); see the module docstring for which model each suits.
CROP_PRESETS: dict[str, dict[str, Any]] = {
    "square": {"method": "square", "margin": 0.1},
    "rafdb_aligned": {"method": "five_point", "margin": 0.2},
    "affectnet": {"method": "square", "margin": 0.1},
    "none": {"method": "resize", "margin": 0.0},
    "fer2013": {"method": "square", "margin": 0.0},
}

METHODS = ("square", "five_point", "resize")


def crop_face(image: np.ndarray, face: Face | Sequence[float], *, size: int = 224, method: str = "square",
              margin: float | None = None, border: str = "constant", fill: int = 0) -> np.ndarray:
    """Crop one face to a ``size`` x ``size`` RGB uint8 array.

    Args:
        image: the image the face was detected in (RGB uint8 (H, W, 3); other forms are converted).
        face: a :class:`Face`, or a box ``(x1, y1, x2, y2)``.
        method: ``square`` (square box around the detection, enlarged by the margin), ``five_point`` (similarity
            transform of the 5 landmarks to the ArcFace template; falls back to ``square`` without landmarks) or
            ``resize`` (the enlarged box stretched to a square).
        margin: fraction of the face size added on every side (default 0.1 for square/resize, 0.0 for five_point).
        border: ``constant`` (``fill`` gray level) or ``edge`` (repeat the border pixels) outside the image.

    Returns:
        (size, size, 3) uint8 RGB.
    """
    if method not in METHODS:
        raise ValueError(f"unknown crop method {method!r}; expected one of {METHODS}")
    if border not in ("constant", "edge"):
        raise ValueError(f"border must be 'constant' or 'edge', got {border!r}")
    if int(size) < 1:
        raise ValueError(f"size must be a positive number of pixels, got {size}")
    rgb = to_rgb_uint8(image)
    box, landmarks = _unpack(face)
    if method == "five_point" and landmarks is None:
        method = "square"
    if margin is None:
        margin = 0.0 if method == "five_point" else 0.1
    if margin <= -0.5:
        raise ValueError(f"margin must be > -0.5, got {margin}")
    if method == "five_point":
        matrix = five_point_matrix(landmarks, size, margin)
    else:
        matrix = box_matrix(box, size, margin, keep_aspect=method == "square")
    return warp(rgb, matrix, int(size), border=border, fill=fill)


def crop_preset(image: np.ndarray, face: Face | Sequence[float], preset: str, *, size: int = 224) -> np.ndarray:
    """:func:`crop_face` with the settings of a named :data:`CROP_PRESETS` entry."""
    if preset not in CROP_PRESETS:
        raise ValueError(f"unknown crop preset {preset!r}; expected one of {', '.join(CROP_PRESETS)}")
    return crop_face(image, face, size=size, **CROP_PRESETS[preset])


def _unpack(face: Face | Sequence[float]) -> tuple[np.ndarray, np.ndarray | None]:
    if isinstance(face, Face):
        box, landmarks = np.asarray(face.box, dtype=np.float64), face.landmarks
    else:
        box, landmarks = np.asarray(face, dtype=np.float64).reshape(-1), None
    if box.shape != (4,) or not np.isfinite(box).all() or box[2] <= box[0] or box[3] <= box[1]:
        raise ValueError(f"face box must be finite (x1, y1, x2, y2) with x2 > x1 and y2 > y1, got {box.tolist()}")
    if landmarks is not None:
        landmarks = np.asarray(landmarks, dtype=np.float64)
        if landmarks.shape != (5, 2) or not np.isfinite(landmarks).all():
            raise ValueError(f"landmarks must be a finite (5, 2) array, got shape {landmarks.shape}")
    return box, landmarks


def box_matrix(box: np.ndarray, size: int, margin: float, *, keep_aspect: bool) -> np.ndarray:
    """2x3 affine map output -> input for the box enlarged by ``margin`` on every side (square around its centre
    with side max(w, h) when ``keep_aspect``)."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    if keep_aspect:
        w = h = max(w, h)
    w, h = w * (1 + 2 * margin), h * (1 + 2 * margin)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    return np.array([[w / size, 0.0, cx - w / 2], [0.0, h / size, cy - h / 2]])


def template(size: int, margin: float = 0.0) -> np.ndarray:
    """The ArcFace template scaled to ``size`` and shrunk about the centre by 1 / (1 + 2 * margin); (5, 2)."""
    unit = ARCFACE_TEMPLATE_112 / 112.0
    return ((unit - 0.5) / (1 + 2 * margin) + 0.5) * size


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation; no reflection) mapping ``src`` to ``dst``
    (Umeyama 1991); returns the 2x3 matrix ``M`` with ``dst ~ M @ [x, y, 1]``."""
    src, dst = np.asarray(src, dtype=np.float64), np.asarray(dst, dtype=np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s0, d0 = src - mu_s, dst - mu_d
    cov = d0.T @ s0 / len(src)
    u, sig, vt = np.linalg.svd(cov)
    sign = np.diag([1.0, np.sign(np.linalg.det(u @ vt)) or 1.0])
    rot = u @ sign @ vt
    var = (s0 ** 2).sum() / len(src)
    scale = (sig * np.diag(sign)).sum() / var if var > 0 else 1.0
    return np.hstack([scale * rot, (mu_d - scale * rot @ mu_s)[:, None]])


def five_point_matrix(landmarks: np.ndarray, size: int, margin: float) -> np.ndarray:
    """2x3 affine map output -> input of the 5-point alignment (inverse of landmarks -> template)."""
    fwd = similarity_transform(landmarks, template(size, margin))
    return invert_affine(fwd)


def invert_affine(m: np.ndarray) -> np.ndarray:
    """Inverse of a 2x3 affine matrix."""
    full = np.vstack([m, [0.0, 0.0, 1.0]])
    return np.linalg.inv(full)[:2]


def warp(image: np.ndarray, matrix: np.ndarray, size: int, *, border: str = "constant", fill: int = 0) -> np.ndarray:
    """Sample ``image`` (H, W, 3) uint8 at ``matrix @ [x, y, 1]`` for every output pixel of a ``size`` square."""
    from PIL import Image

    matrix = np.asarray(matrix, dtype=np.float64)
    pil = Image.fromarray(image)
    step = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))  # input pixels per output pixel
    if step > 1.5:
        pil, matrix = _shrink(pil, matrix, size, step)
    if border == "edge":
        pil, matrix = _pad_edge(pil, matrix, size)
    coeffs = tuple(float(v) for v in matrix.reshape(-1))
    out = pil.transform((size, size), Image.AFFINE, coeffs, resample=Image.BILINEAR, fillcolor=(fill, fill, fill))
    return np.asarray(out, dtype=np.uint8)


def _output_extent(matrix: np.ndarray, size: int) -> np.ndarray:
    """Input-space (x, y) of the four output corners; (4, 2)."""
    corners = np.array([[0, 0, 1], [size, 0, 1], [0, size, 1], [size, size, 1]], dtype=np.float64)
    return corners @ matrix.T


def _shrink(pil: Any, matrix: np.ndarray, size: int, step: float) -> tuple[Any, np.ndarray]:
    """Antialiased resize of the image region the output covers, so the remaining warp has a scale close to 1."""
    from PIL import Image

    pts = _output_extent(matrix, size)
    w, h = pil.size
    x0, y0 = (max(0, int(np.floor(v - 2 * step))) for v in pts.min(0))
    x1, y1 = min(w, int(np.ceil(pts[:, 0].max() + 2 * step))), min(h, int(np.ceil(pts[:, 1].max() + 2 * step)))
    if x1 <= x0 or y1 <= y0:  # the output lies entirely outside the image
        return pil, matrix
    nw, nh = max(1, round((x1 - x0) / step)), max(1, round((y1 - y0) / step))
    region = pil.crop((x0, y0, x1, y1)).resize((nw, nh), Image.BILINEAR)
    out = matrix.copy()
    out[:, 2] -= (x0, y0)
    out[0] /= (x1 - x0) / nw
    out[1] /= (y1 - y0) / nh
    return region, out


def _pad_edge(pil: Any, matrix: np.ndarray, size: int) -> tuple[Any, np.ndarray]:
    """Pad by repeating edge pixels so that the whole output maps inside the image; shift the matrix to match."""
    from PIL import Image

    pts = _output_extent(matrix, size)
    w, h = pil.size
    left = int(np.ceil(max(0.0, -pts[:, 0].min()))) + 1
    top = int(np.ceil(max(0.0, -pts[:, 1].min()))) + 1
    right = int(np.ceil(max(0.0, pts[:, 0].max() - w))) + 1
    bottom = int(np.ceil(max(0.0, pts[:, 1].max() - h))) + 1
    arr = np.pad(np.asarray(pil), ((top, bottom), (left, right), (0, 0)), mode="edge")
    shifted = matrix.copy()
    shifted[:, 2] += (left, top)
    return Image.fromarray(arr), shifted
