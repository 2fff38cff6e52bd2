"""Helpers of the server tests: the served model name, photo and data paths, a slow detector, server start-up and
a Prometheus metric reader (``from tests.serve._helpers import ...``)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

import ferkit  # noqa: E402
from ferkit.detect.base import Face  # noqa: E402
from ferkit.infer.recognizer import Recognizer  # noqa: E402
from ferkit.serve import create_app  # noqa: E402
from ferkit.serve.background import BackgroundServer  # noqa: E402
from tests._shared import SHARED  # noqa: E402

EXAMPLES = Path(ferkit.__file__).parent / "resources" / "examples"
FERPLUS_VALID = SHARED / "data" / "ferplus" / "FER2013Valid"
MODEL = "poster_v2_open"


class SlowDetector:
    """One fixed face per image, after ``delay`` seconds (to hold requests in flight)."""

    name = "slow"

    def __init__(self, delay: float):
        self.delay = delay

    def detect(self, image: np.ndarray) -> list[Face]:
        time.sleep(self.delay)
        h, w = image.shape[:2]
        return [Face(box=(w * 0.25, h * 0.25, w * 0.75, h * 0.75), score=0.9)]


def variant(rec: Recognizer, detector=None, backend=None) -> Recognizer:
    """A recognizer sharing ``rec``'s model but with another detector (or backend)."""
    det = detector if detector is not None else rec.detector
    return Recognizer(backend or rec.backend, det, detector_name=getattr(det, "name", "custom"), crop=rec.crop,
                      batch_size=rec.batch_size)


def start(models, **limits) -> BackgroundServer:
    """A running server on a free loopback port (stop it with ``.stop()``)."""
    return BackgroundServer(create_app(models, **limits)).start()


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text (0 when absent)."""
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        if key == (f"{name}{{{want}}}" if want else name):
            return float(value)
    return 0.0
