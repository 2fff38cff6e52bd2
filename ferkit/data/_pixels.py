"""Pixel-string CSVs (FER2013's ``fer2013.csv``): parsing rows and a data set that keeps the pixels in memory."""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ferkit.data.dataset import FerDataset
from ferkit.errors import DatasetError
from ferkit.image import ImageReadError

#: ``Usage`` column value -> ferkit split (the official FER2013 / FERPlus split).
USAGE_SPLITS = {"training": "train", "publictest": "val", "privatetest": "test"}
USAGE_NAMES = {"train": "Training", "val": "PublicTest", "test": "PrivateTest"}


def read_rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield ``(line_number, row)`` for each data row; keys are the header names stripped and lower-cased."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            raise DatasetError(f"{path} is empty; expected a CSV with a header line")
        keys = [h.strip().lower() for h in header]
        for row in reader:
            if not row or all(not c.strip() for c in row):
                continue
            yield reader.line_num, dict(zip(keys, row))


def header(path: Path) -> list[str]:
    """The stripped, lower-cased header names of a CSV file."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        first = next(csv.reader(f), None)
    return [h.strip().lower() for h in first or []]


def parse_pixels(text: str) -> np.ndarray:
    """Space-separated grey values of a square image -> ``(side, side)`` uint8 array.

    Raises:
        ValueError: non-integer values, values outside 0..255, or a count that is not a square (48x48 = 2304).
    """
    try:
        values = np.fromstring(text, dtype=np.int32, sep=" ")
    except ValueError:
        raise ValueError("pixels contain something other than integers separated by spaces") from None
    side = math.isqrt(values.size)
    if values.size == 0 or side * side != values.size:
        raise ValueError(f"{values.size} pixel values do not form a square image (FER2013: 48x48 = 2304 values)")
    if values.min() < 0 or values.max() > 255:
        raise ValueError(f"pixel values must be within 0..255, found {values.min()}..{values.max()}")
    return values.astype(np.uint8).reshape(side, side)


class PixelDataset(FerDataset):
    """A :class:`FerDataset` whose images are grey pixel arrays held in memory (one per sample)."""

    per_sample = ("pixels",)

    def __init__(self, samples: Sequence[tuple[str, int]], label_names: Sequence[str], pixels: Sequence[np.ndarray],
                 **kwargs: Any):
        super().__init__(samples, label_names, **kwargs)
        if len(pixels) != len(self.samples):
            raise ValueError(f"{len(pixels)} pixel arrays for {len(self.samples)} samples")
        self.pixels = list(pixels)

    def _decode(self, index: int) -> Image.Image:
        a = self.pixels[index]
        if a.dtype != np.uint8 or a.ndim != 2:
            raise ImageReadError(f"{self.samples[index][0]}: pixel array has shape {a.shape} {a.dtype}")
        return Image.fromarray(a).convert("RGB")
