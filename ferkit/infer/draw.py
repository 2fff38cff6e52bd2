"""Annotated images: a box per face, its top label and probability, and one probability bar per expression."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ferkit.infer.records import FaceResult

#: One colour per canonical label (RGB), so that a label has the same colour in every picture.
COLOURS = {"neutral": (180, 180, 180), "happiness": (255, 200, 0), "sadness": (60, 110, 255),
           "surprise": (255, 120, 220), "fear": (160, 80, 255), "disgust": (70, 190, 70), "anger": (240, 50, 40),
           "contempt": (150, 100, 60)}


@lru_cache(maxsize=8)
def _font(size: int) -> Any:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has a single bitmap font
        return ImageFont.load_default()


UNTRAINED_NOTE = "UNTRAINED MODEL - random weights, meaningless scores"


def annotate(image: np.ndarray, faces: Sequence[FaceResult], *, bars: bool = True,
             top: int | None = None, untrained: bool = False) -> np.ndarray:
    """Draw the faces on a copy of ``image``.

    Args:
        image: RGB uint8 (H, W, 3). faces: recognizer results for this image.
        bars: draw the per-label probability bars next to each box. top: only the ``top`` most likely labels.
        untrained: draw a red banner saying the model is untrained (``Record.untrained``).

    Returns:
        The annotated RGB uint8 copy.
    """
    pil = Image.fromarray(np.ascontiguousarray(image)).convert("RGB")
    draw = ImageDraw.Draw(pil)
    h, w = image.shape[:2]
    unit = max(1, round(max(h, w) / 400))
    font = _font(max(10, 6 * unit + 5))
    for face in faces:
        colour = COLOURS.get(face.label, (0, 255, 0))
        x1, y1, x2, y2 = face.box
        draw.rectangle([x1, y1, x2, y2], outline=colour, width=2 * unit)
        _label(draw, f"{face.label} {face.label_score:.2f}", (x1, y1), colour, font)
        if bars:
            _bars(draw, face, (x2 + 2 * unit, y1), font, unit, top, w)
    if untrained:
        left, top_, right, bottom = draw.textbbox((0, 0), UNTRAINED_NOTE, font=font)
        draw.rectangle([0, 0, w, bottom - top_ + 8], fill=(200, 0, 0))
        draw.text((4 - left, 4 - top_), UNTRAINED_NOTE, fill=(255, 255, 255), font=font)
    return np.asarray(pil)


def _label(draw: ImageDraw.ImageDraw, text: str, xy: tuple[float, float], colour: tuple[int, ...], font: Any) -> None:
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    tw, th = right - left, bottom - top
    x, y = xy[0], max(0.0, xy[1] - th - 4)
    draw.rectangle([x, y, x + tw + 4, y + th + 4], fill=colour)
    draw.text((x + 2 - left, y + 2 - top), text, fill=(0, 0, 0), font=font)


def _bars(draw: ImageDraw.ImageDraw, face: FaceResult, origin: tuple[float, float], font: Any, unit: int,
          top: int | None, width: int) -> None:
    items = sorted(face.scores.items(), key=lambda kv: -kv[1])[:top] if top else list(face.scores.items())
    name_w = max(draw.textbbox((0, 0), n, font=font)[2] for n, _ in items) + 4
    bar_w, row_h = 40 * unit, draw.textbbox((0, 0), "Ag", font=font)[3] + 2
    x, y = origin
    if x + name_w + bar_w > width:  # no room right of the box: draw inside it, at its left edge
        x = max(0.0, face.box[0] - name_w - bar_w - 2 * unit) if face.box[0] > name_w + bar_w else face.box[0]
    draw.rectangle([x, y, x + name_w + bar_w + 2, y + row_h * len(items) + 2], fill=(0, 0, 0))
    for i, (name, p) in enumerate(items):
        ry = y + 1 + i * row_h
        draw.text((x + 2, ry), name, fill=(255, 255, 255), font=font)
        draw.rectangle([x + name_w, ry + 2, x + name_w + bar_w * float(p), ry + row_h - 2],
                       fill=COLOURS.get(name, (0, 255, 0)))
