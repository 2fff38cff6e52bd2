"""Fixtures for the server tests: one untrained POSTER++ (open streams, 112 px, fast on CPU) with the YuNet detector
that ships with ferkit, servers on free loopback ports, and real photos (ferkit's examples, FER+ face crops)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

import ferkit  # noqa: E402
from ferkit.infer.recognizer import Recognizer  # noqa: E402
from ferkit.serve import ServedModel  # noqa: E402
from tests.serve._helpers import EXAMPLES, FERPLUS_VALID, MODEL, start  # noqa: E402


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
