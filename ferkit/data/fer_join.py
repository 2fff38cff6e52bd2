"""Join FERPlus images to FER2013's original labels by pixel content.

FERPlus relabels the FER2013 faces; in its image-folder form the files are named by row of ``fer2013.csv``, while
FER2013's JPEG folder form names them otherwise, so the two can only be joined by their pixels. Each FERPlus image
is matched to the nearest FER2013 image of the same split (root-mean-square grey-level difference; JPEG coding
leaves ~2 levels) and takes its label when the difference is below ``max_rms``. Results are cached by content hash.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

log = logging.getLogger(__name__)

SIDE = 48


def _grey(path: str) -> np.ndarray:
    with Image.open(path) as im:
        im = im.convert("L")
        if im.size != (SIDE, SIDE):
            im = im.resize((SIDE, SIDE), Image.BILINEAR)
        return np.asarray(im, dtype=np.float32).reshape(-1)


def nearest(a: np.ndarray, b: np.ndarray, chunk: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """For each row of ``a`` (N, D) the index of the nearest row of ``b`` (M, D) and the RMS difference per value."""
    bn = (b.astype(np.float64) ** 2).sum(1)
    idx, rms = np.empty(len(a), np.int64), np.empty(len(a), np.float64)
    for s in range(0, len(a), chunk):
        x = a[s:s + chunk]
        d = bn[None] - 2.0 * (x @ b.T).astype(np.float64)  # |x|^2 added below (constant per row)
        j = d.argmin(1)
        idx[s:s + chunk] = j
        diff = x.astype(np.float64) - b[j].astype(np.float64)  # exact distance of the chosen pairs
        rms[s:s + chunk] = np.sqrt((diff ** 2).mean(1))
    return idx, rms


def match_labels(images: Sequence[str], ref_images: Sequence[str], ref_targets: Sequence[int], *,
                 max_rms: float = 8.0, cache: str | os.PathLike | None = None) -> list[int | None]:
    """The target of the nearest reference image for each image, or None when none is within ``max_rms`` grey
    levels (RMS). ``cache``: a folder where the result is stored under a hash of both lists."""
    key = hashlib.sha256(json.dumps([list(map(str, images)), list(map(str, ref_images)), list(ref_targets),
                                     max_rms]).encode()).hexdigest()[:24]
    path = Path(cache) / f"fer_join-{key}.json" if cache else None
    if path is not None and path.is_file():
        return json.loads(path.read_text())
    a = np.stack([_grey(p) for p in images])
    b = np.stack([_grey(p) for p in ref_images])
    idx, rms = nearest(a, b)
    out = [int(ref_targets[j]) if r <= max_rms else None for j, r in zip(idx, rms)]
    log.info("joined %d of %d images to a reference image within %.1f grey levels (median %.2f)",
             sum(o is not None for o in out), len(out), max_rms, float(np.median(rms)))
    if path is not None:
        from ferkit.checkpoint import atomic_write_bytes

        text = json.dumps(out).encode()
        atomic_write_bytes(path, lambda f: f.write(text))
    return out
