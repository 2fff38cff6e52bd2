"""Overlapped stages: decoding / detection / cropping in worker threads while the caller classifies.

:func:`ordered_map` is the whole mechanism. A feeder thread pulls items from the input iterator (for a video that
is where frames are decoded) and hands each to a pool of ``workers`` threads running ``fn`` (read, detect, crop);
the caller gets the results in input order through a bounded queue, so at most ``ahead`` items are in flight and
memory stays constant however long the folder or video. The heavy work of every stage (Pillow and OpenCV decoding
and resizing, OpenCV / onnxruntime / PyTorch inference) releases the GIL, so the stages run in parallel and a
stream is limited by its slowest stage rather than by the sum of all of them.

``workers=0`` is the sequential path: ``fn`` runs in the caller's thread, one item at a time, nothing read ahead.
Both paths give the same results in the same order (tested); a detector that is not thread-safe (OpenCV's YuNet
keeps per-call state) is called by one thread at a time (:class:`SerialDetector`).
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")
R = TypeVar("R")

#: default ``workers`` of :func:`ferkit.load`: read / detect / crop threads next to the classifying caller
DEFAULT_WORKERS = min(2, os.cpu_count() or 1)

_DONE = object()


class _Failed:
    """The input iterator raised: re-raised in the caller at this position."""

    def __init__(self, error: BaseException):
        self.error = error


def resolve_workers(workers: int | None) -> int:
    """``None`` -> :data:`DEFAULT_WORKERS`; else the count (>= 0)."""
    if workers is None:
        return DEFAULT_WORKERS
    if int(workers) < 0:
        raise ValueError(f"workers must be >= 0 (0 = sequential), got {workers}")
    return int(workers)


def ordered_map(fn: Callable[[T], R], items: Iterable[T], workers: int, *, ahead: int | None = None) -> Iterator[R]:
    """``fn(item)`` for every item, in input order, computed ``workers`` at a time ahead of the caller.

    Args:
        fn: the per-item work (should catch its own errors: an exception is re-raised in the caller).
        items: any iterable; with ``workers > 0`` it is iterated in a feeder thread.
        workers: worker threads; 0 runs ``fn`` lazily in the caller's thread (no thread, no read-ahead).
        ahead: items in flight at most (default ``2 * workers``).

    Closing the generator early (``break``, an exception in the caller) stops the feeder and waits for the running
    items; nothing keeps running in the background.
    """
    if workers <= 0:
        for item in items:
            yield fn(item)
        return
    ahead = max(1, int(ahead if ahead is not None else 2 * workers))
    pending: queue.Queue = queue.Queue(maxsize=ahead)
    stop = threading.Event()
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ferkit-stage")

    def put(x: Any) -> bool:
        while not stop.is_set():
            try:
                pending.put(x, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def feed() -> None:
        try:
            for item in items:
                if stop.is_set() or not put(pool.submit(fn, item)):
                    return
        except BaseException as e:  # noqa: BLE001 - handed to the caller
            put(_Failed(e))
            return
        put(_DONE)

    feeder = threading.Thread(target=feed, name="ferkit-feeder", daemon=True)
    feeder.start()
    try:
        while True:
            x = pending.get()
            if x is _DONE:
                break
            if isinstance(x, _Failed):
                raise x.error
            yield x.result()
    finally:
        stop.set()
        while feeder.is_alive():  # unblock a feeder waiting on a full queue
            _drain(pending)
            feeder.join(timeout=0.05)
        _drain(pending)
        pool.shutdown(wait=True, cancel_futures=True)


def _drain(q: queue.Queue) -> None:
    while True:
        try:
            x = q.get_nowait()
        except queue.Empty:
            return
        if isinstance(x, Future):
            x.cancel()


class SerialDetector:
    """A detector called by one thread at a time, unless it declares ``thread_safe = True``.

    OpenCV's ``FaceDetectorYN`` (YuNet) and cascade objects keep per-call state; a lock around ``detect`` makes them
    safe to share between the pipeline's worker threads (the other stages still overlap with detection).
    """

    def __init__(self, detector: Any):
        self.detector = detector
        self.name = getattr(detector, "name", type(detector).__name__)
        self._lock = None if getattr(detector, "thread_safe", False) else threading.Lock()

    def detect(self, rgb: np.ndarray) -> list:
        if self._lock is None:
            return list(self.detector.detect(rgb))
        with self._lock:
            return list(self.detector.detect(rgb))
