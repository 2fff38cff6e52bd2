"""Timing helper shared by the benchmark scripts (run as `python benchmarks/NAME.py`: this folder is on sys.path)."""

from __future__ import annotations

import time
from collections.abc import Callable


def call_times(fn: Callable[[], object], repeats: int, warmup: int = 1) -> list[float]:
    """Seconds taken by each of ``repeats`` calls of ``fn()``, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    runs = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t)
    return runs
