"""Uploaded image bytes -> RGB pixels, refusing what the server does not take before decoding it: unknown or
disallowed formats (415), images larger than ``max_pixels`` by their header (413, decompression bombs), then
undecodable data (400). Decoding is :func:`ferkit.image.load_image` (EXIF orientation, alpha on white)."""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from ferkit.serve.errors import ServeError


def check_formats(formats: Sequence[str]) -> None:
    """Raise ``ValueError`` when a format name is not one Pillow can open here."""
    Image.init()
    unknown = [f for f in formats if f not in Image.OPEN]
    if unknown:
        raise ValueError(f"unknown image format(s) {', '.join(unknown)}; Pillow opens: {', '.join(sorted(Image.OPEN))}")


def probe(data: bytes, name: str, *, formats: Sequence[str], max_pixels: int) -> tuple[str, int, int]:
    """Format, width and height from the image header, without decoding the pixels.

    Raises:
        ServeError: 400 empty or unreadable header, 415 not an image or a format not in ``formats``, 413 more
            pixels than ``max_pixels``.
    """
    if not data:
        raise ServeError(400, f"{name}: the upload is empty", type="empty_upload")
    try:
        with Image.open(io.BytesIO(data), formats=list(formats)) as im:
            fmt, (w, h) = im.format, im.size
    except UnidentifiedImageError:
        other = _identify(data)
        allowed = ", ".join(formats)
        if other is None:
            raise ServeError(415, f"{name}: not an image (or a format this server cannot read); accepted: {allowed}",
                             type="not_an_image") from None
        raise ServeError(415, f"{name}: image format {other} is not accepted; accepted: {allowed}",
                         type="format_not_allowed") from None
    except Image.DecompressionBombError as e:
        raise ServeError(413, f"{name}: {e}", type="too_many_pixels") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise ServeError(400, f"{name}: cannot read the image header: {e}", type="invalid_image") from None
    if w * h > max_pixels:
        raise ServeError(413, f"{name}: {w}x{h} = {w * h:,} pixels is more than the limit of {max_pixels:,} pixels",
                         type="too_many_pixels")
    return fmt, w, h


def _identify(data: bytes) -> str | None:
    """Pillow's name for the format of ``data`` (only its header is parsed), None when it is not an image."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            return im.format
    except Exception:  # noqa: BLE001 - any failure means "not an image we know"
        return None


def decode(data: bytes, name: str, *, formats: Sequence[str], max_pixels: int) -> np.ndarray:
    """RGB uint8 (H, W, 3) pixels of an uploaded image, after :func:`probe`.

    Raises:
        ServeError: as :func:`probe`, and 400 when the data cannot be decoded (truncated, corrupt).
    """
    from ferkit.image import ImageReadError, load_image

    probe(data, name, formats=formats, max_pixels=max_pixels)
    fp = io.BytesIO(data)
    fp.name = name  # named in load_image's messages
    try:
        return load_image(fp)
    except ImageReadError as e:
        raise ServeError(400, str(e), type="invalid_image") from None
