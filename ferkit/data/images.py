"""Image decoding for data sets and user photos: any file Pillow reads -> an 8-bit RGB ``PIL.Image``.

Grey, palette, alpha, 16-bit, 32-bit integer, float and CMYK images are converted explicitly (Pillow's own
``convert("RGB")`` clips 16-bit values and drops alpha onto whatever colour the transparent pixels hold). JPEG EXIF
orientation is applied, so a phone photo is upright. Numpy arrays with alpha follow the same rules
(:func:`ferkit.image.to_rgb_uint8`), so a file, its ``PIL.Image`` and its pixel array give the same RGB image.
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

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm")
_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N")
_ALPHA = ("LA", "La", "PA", "RGBA", "RGBa")


class ImageReadError(DatasetError):
    """An image file is missing, not an image, truncated or otherwise undecodable."""


def is_image_file(name: str | os.PathLike) -> bool:
    """True when the file name ends with an image extension Pillow reads (case-insensitive)."""
    return str(name).lower().endswith(IMAGE_EXTENSIONS)


def _describe(source: Any) -> str:
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return f"<{len(source)} bytes>"
    return getattr(source, "name", None) or f"<{type(source).__name__}>"


def load_image(source: str | os.PathLike | bytes | bytearray | memoryview | IO[bytes] | Image.Image,
               *, background: Sequence[int] = (255, 255, 255)) -> Image.Image:
    """Decode an image fully and return it as 8-bit RGB, upright according to its EXIF orientation.

    Args:
        source: a path, the encoded bytes, a binary file object, or a ``PIL.Image`` (only converted).
        background: RGB colour that transparent pixels are composited onto.

    Raises:
        ImageReadError: the file is missing, empty, not an image, truncated or corrupt (the message names it).
    """
    if isinstance(source, Image.Image):
        return to_rgb(source, background=background)
    name = _describe(source)
    fp = io.BytesIO(bytes(source)) if isinstance(source, (bytes, bytearray, memoryview)) else source
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
    """Convert any Pillow mode to 8-bit RGB.

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
        return Image.fromarray(_to_uint8(np.asarray(image), mode)).convert("RGB")
    return image.convert("RGB")


def _to_uint8(a: np.ndarray, mode: str) -> np.ndarray:
    a = a.astype(np.float64)
    if mode == "F":
        a = a * 255.0 if a.size and np.nanmax(a) <= 1.0 else a
        return np.clip(np.nan_to_num(a), 0, 255).round().astype(np.uint8)
    if mode == "I" and (a.size == 0 or (a.min() >= 0 and a.max() <= 255)):
        return a.astype(np.uint8)
    return (np.clip(a, 0, 65535) / 257.0).round().astype(np.uint8)
