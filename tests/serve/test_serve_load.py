"""A small run of ``benchmarks/serve_load.py``: 40 requests at once, a quarter of them bad uploads, against a real
server on loopback; then an overload run where the queue is smaller than the burst."""

from __future__ import annotations

import importlib.util
import os
import sys

import pytest

from ferkit.serve import ServedModel
from tests.serve._helpers import MODEL, start

pytestmark = pytest.mark.slow
BENCH = os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks", "serve_load.py")


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("serve_load", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it executes
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def test_burst_of_40_mixed_requests(recognizer, bench):
    srv = start(ServedModel(MODEL, recognizer), max_queue=64, request_timeout=120)
    try:
        s = bench.run_phase(srv.url, os.getpid(), 40, 0.25)
    finally:
        srv.stop()
    print("\n" + bench.format_table("40 requests", s))
    assert s["requests"] == 40 and s["good"] == 30 and s["bad"] == 10
    assert s["good_ok"] == 30  # no error on any good request
    assert s["bad_expected"] == 10  # each bad upload got its own 4xx: 400, 413 or 415
    assert s["rows"]["pair"]["codes"] == {200: 10}
    assert s["passes"] < s["faces"] == 40  # 40 faces (pairs have two) in fewer forward passes: batching
    assert s["healthy"]
    assert s["rss_after"] - s["rss_before"] < 300  # MiB; the burst does not leave memory behind
    assert s["p99"] < 60


def test_overload_is_refused_not_queued(recognizer, bench):
    srv = start(ServedModel(MODEL, recognizer), max_queue=8, request_timeout=120)
    try:
        s = bench.run_phase(srv.url, os.getpid(), 40, 0.0)
    finally:
        srv.stop()
    assert s["good_503"] > 0 and s["good_ok"] >= 8 and s["good_ok"] + s["good_503"] == 40
    assert s["retry_after"]  # every 503 says when to come back
    assert s["healthy"]
