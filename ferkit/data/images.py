"""Image decoding for data sets: re-exports of :mod:`ferkit.image`, the one home of image decoding.

Data sets decode their files with :func:`ferkit.image.load_pil` (8-bit RGB ``PIL.Image``, EXIF orientation applied,
alpha composited on white, 16-bit scaled); :func:`ferkit.image.load_image` gives the same pixels as an RGB uint8
array. ``load_image`` imported from here (or from ``ferkit.data``) is the deprecated name of ``load_pil``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

from PIL import Image

from ferkit.image import IMAGE_EXTENSIONS, ImageReadError, ImageSource, is_image_file, load_pil, to_rgb

__all__ = ["IMAGE_EXTENSIONS", "ImageReadError", "is_image_file", "load_pil", "to_rgb", "load_image"]


def load_image(source: ImageSource, *, background: Sequence[int] = (255, 255, 255)) -> Image.Image:
    """Deprecated: :func:`ferkit.image.load_pil` (a ``PIL.Image``). For an RGB uint8 array use
    :func:`ferkit.image.load_image`."""
    warnings.warn("ferkit.data.load_image (a PIL image) is deprecated: use ferkit.image.load_pil for a PIL image or "
                  "ferkit.image.load_image for an RGB uint8 array", DeprecationWarning, stacklevel=2)
    return load_pil(source, background=background)
