"""Fixtures for the server tests: one untrained POSTER++ (open streams, 112 px, fast on CPU) with the YuNet detector
that ships with ferkit, servers on free loopback ports, and real photos (ferkit's examples, FER+ face crops)."""

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
from ferkit.serve import ServedModel, create_app  # noqa: E402
from ferkit.serve.background import BackgroundServer  # noqa: E402

from ..conftest import SHARED  # noqa: E402

EXAMPLES = Path(ferkit.__file__).parent / "resources" / "examples"
FERPLUS_VALID = SHARED / "data" / "ferplus" / "FER2013Valid"
MODEL = "poster_v2_open"


@pytest.fixture(scope="session")
def recognizer() -> Recognizer:
    """POSTER++ (open streams) with random weights and YuNet: real detection, fast forward passes."""
    return ferkit.load(MODEL, detector="yunet", device="cpu")


@pytest.fixture(scope="session")
def astronaut() -> bytes:
    return (EXAMPLES / "astronaut.jpg").read_bytes()


@pytest.fixture(scope="session")
def hopper() -> bytes:
    return (EXAMPLES / "grace_hopper.jpg").read_bytes()


@pytest.fixture(scope="session")
def fer_crops() -> list[Path]:
    """Real 48x48 FER+ validation faces; skips when the shared data is absent."""
    files = sorted(FERPLUS_VALID.glob("*.png"))[:4] if FERPLUS_VALID.is_dir() else []
    if not files:
        pytest.skip(f"FER+ validation faces not available at {FERPLUS_VALID}")
    return files


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


@pytest.fixture(scope="module")
def server(recognizer):
    """The shared server: the untrained POSTER++ as ``poster_v2_open``, small limits."""
    srv = start(ServedModel(MODEL, recognizer), max_upload_bytes=3_000_000, max_pixels=4_000_000, max_images=4)
    yield srv
    srv.stop()


@pytest.fixture
def client(server):
    with httpx.Client(base_url=server.url, timeout=60) as c:
        yield c


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

