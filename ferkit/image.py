"""Image decoding and conversion in one place: every ferkit image API takes RGB ``uint8`` arrays of shape (H, W, 3).

Decoding files (data sets, user photos, uploads): :func:`load_image` returns that array, :func:`load_pil` an 8-bit RGB
``PIL.Image`` (what data-set transforms take). Both apply the JPEG EXIF orientation (a phone photo is upright) and
convert grey, palette, alpha, 16-bit, 32-bit integer, float and CMYK images explicitly with :func:`to_rgb` (Pillow's
own ``convert("RGB")`` clips 16-bit values and drops alpha onto whatever colour the transparent pixels hold).

:func:`to_rgb_uint8` turns the arrays and images users actually have into that form:

* grayscale (H, W) or (H, W, 1) -> the gray value repeated in R, G and B;
* gray + alpha (H, W, 2) and RGBA / BGRA (H, W, 4) arrays and PIL images with alpha -> composited on white, exactly
  as image files are read (:func:`to_rgb`; an alpha that is 0 everywhere is ignored), so a file, its ``PIL.Image``
  and its pixel array give the same RGB image;
* ``uint16`` (16-bit PNG/TIFF) -> rounded ``value / 257`` (65535 -> 255);
* float in [0, 1] -> rounded ``value * 255``; ``bool`` -> 0 / 255;
* BGR (OpenCV's ``cv2.imread``) with ``channel_order="bgr"``;
* a ``PIL.Image`` of any mode.

Anything else (other integer types, floats outside [0, 1] or NaN, empty or 4-D arrays, 5+ channels) raises
``ValueError`` naming the problem and the expected form.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ferkit.errors import DatasetError

ImageLike = Any  # np.ndarray | PIL.Image.Image
#: what the decoders accept: a path, encoded bytes, a binary file object or a ``PIL.Image``
ImageSource = str | os.PathLike | bytes | bytearray | memoryview | IO[bytes] | Image.Image

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm")
_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N")
_ALPHA = ("LA", "La", "PA", "RGBA", "RGBa")


class ImageReadError(DatasetError):
    """An image file is missing, not an image, truncated or otherwise undecodable (a ``ValueError``)."""


def is_image_file(name: str | os.PathLike) -> bool:
    """True when the file name ends with an image extension Pillow reads (case-insensitive)."""
    return str(name).lower().endswith(IMAGE_EXTENSIONS)


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
    return np.asarray(to_rgb(Image.fromarray(np.ascontiguousarray(arr))))  # (H, W, 2) -> LA, (H, W, 4) -> RGBA


def _is_pil(image: Any) -> bool:
    return type(image).__module__.startswith("PIL.")


def _from_pil(image: Any) -> np.ndarray:
    return np.asarray(to_rgb(image))  # one decoder for every Pillow mode (alpha composited on white)


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


def load_image(source: ImageSource, *, background: Sequence[int] = (255, 255, 255)) -> np.ndarray:
    """Decode an image as a C-contiguous RGB uint8 array (H, W, 3): :func:`load_pil` as an array.

    Args:
        source: a path, the encoded bytes, a binary file object, or a ``PIL.Image`` (only converted).
        background: RGB colour that transparent pixels are composited onto.

    Raises:
        FileNotFoundError: ``source`` is a path that does not exist.
        ImageReadError: not an image, truncated or corrupt (a ``ValueError``; the message names the file).
    """
    if isinstance(source, (str, os.PathLike)) and not os.path.exists(source):
        raise FileNotFoundError(f"image not found: {source}")
    return np.ascontiguousarray(np.asarray(load_pil(source, background=background)))


def load_pil(source: ImageSource, *, background: Sequence[int] = (255, 255, 255)) -> Image.Image:
    """Decode an image fully and return it as an 8-bit RGB ``PIL.Image``, upright according to its EXIF orientation.

    Args:
        source: a path, the encoded bytes, a binary file object, or a ``PIL.Image`` (only converted).
        background: RGB colour that transparent pixels are composited onto.

    Raises:
        ImageReadError: the file is missing, empty, not an image, truncated or corrupt (the message names it).
    """
    if isinstance(source, Image.Image):
        return to_rgb(source, background=background)
    name = _describe(source)
    fp: Any = io.BytesIO(bytes(source)) if isinstance(source, (bytes, bytearray, memoryview)) else source
    try:
        with Image.open(fp) as im:
            im.load()  # decode now: truncated or corrupt data fails here, not later in a transform
            if _orientation(im) != 1:
                im = ImageOps.exif_transpose(im)
            return to_rgb(im, background=background)
    except FileNotFoundError:
        raise ImageReadError(f"image file not found: {name}") from None
    except IsADirectoryError:
        raise ImageReadError(f"expected an image file but found a directory: {name}") from None
    except UnidentifiedImageError:
        size = _size_hint(source)
        raise ImageReadError(f"not an image (or a format Pillow cannot read): {name}{size}") from None
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as e:
        raise ImageReadError(f"cannot decode image {name}: {e}") from None


def _describe(source: Any) -> str:
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return f"<{len(source)} bytes>"
    return getattr(source, "name", None) or f"<{type(source).__name__}>"


def _orientation(im: Image.Image) -> int:
    """EXIF orientation tag (1 = upright); only parsed when the file carries EXIF data."""
    if "exif" not in im.info and im.format != "TIFF":
        return 1
    try:
        return int(im.getexif().get(0x0112, 1))
    except (ValueError, TypeError, SyntaxError, OSError):
        return 1


def _size_hint(source: Any) -> str:
    if isinstance(source, (str, os.PathLike)) and Path(source).is_file() and Path(source).stat().st_size == 0:
        return " (the file is empty)"
    return ""


def to_rgb(image: Image.Image, *, background: Sequence[int] = (255, 255, 255)) -> Image.Image:
    """Convert a ``PIL.Image`` of any mode to 8-bit RGB (a ``PIL.Image``; :func:`to_rgb_uint8` gives arrays).

    - ``RGB``: returned unchanged (same object).
    - alpha modes (``LA``, ``PA``, ``RGBA``, palette with transparency): composited onto ``background``; an alpha
      channel that is 0 everywhere is ignored (a fully transparent picture shows nothing: such files carry their
      image in the colour channels and an unused alpha).
    - 16-bit grey (``I;16*``): 0..65535 scaled to 0..255 (divide by 257, rounded).
    - 32-bit integer ``I``: taken as 8-bit when every value is within 0..255, else as 16-bit (clipped to 0..65535).
    - float ``F``: taken as 0..1 when every value is within 0..1, else as 0..255 (clipped).
    - everything else (``1``, ``L``, ``P``, ``CMYK``, ``YCbCr``, ...): Pillow's conversion.
    """
    mode = image.mode
    if mode == "RGB":
        return image
    if mode == "P" and "transparency" in image.info:
        image, mode = image.convert("RGBA"), "RGBA"
    if mode in _ALPHA:
        rgba = image.convert("RGBA")
        if rgba.getchannel("A").getextrema() == (0, 0):
            return rgba.convert("RGB")
        canvas = Image.new("RGBA", rgba.size, tuple(int(c) for c in background[:3]) + (255,))
        return Image.alpha_composite(canvas, rgba).convert("RGB")
    if mode in _SIXTEEN_BIT or mode in ("I", "F"):
        return Image.fromarray(_pil_mode_to_uint8(np.asarray(image), mode)).convert("RGB")
    return image.convert("RGB")


def _pil_mode_to_uint8(a: np.ndarray, mode: str) -> np.ndarray:
    a = a.astype(np.float64)
    if mode == "F":
        a = a * 255.0 if a.size and np.nanmax(a) <= 1.0 else a
        return np.clip(np.nan_to_num(a), 0, 255).round().astype(np.uint8)
    if mode == "I" and (a.size == 0 or (a.min() >= 0 and a.max() <= 255)):
        return a.astype(np.uint8)
    return (np.clip(a, 0, 65535) / 257.0).round().astype(np.uint8)


def resize_max_side(image: np.ndarray, max_side: int | None) -> tuple[np.ndarray, tuple[float, float]]:
    """Downscale (never upscale) so that ``max(H, W) <= max_side``; return the image and the scales ``(sx, sy)``.

    ``x / sx``, ``y / sy`` map coordinates in the returned image back to the input. Uses PIL's antialiased bilinear
    filter, so a cv2 install is not needed.
    """
    h, w = image.shape[:2]
    if not max_side or max(h, w) <= max_side:
        return image, (1.0, 1.0)
    scale = max_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    out = np.asarray(Image.fromarray(image).resize(size, Image.BILINEAR))
    return out, (size[0] / w, size[1] / h)
