"""Prometheus metrics, hand-written (no client library): counters, gauges and histograms with labels, rendered in the
text exposition format 0.0.4 at ``GET /metrics``. Each worker process keeps its own values."""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


def _escape(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    parts = [f'{n}="{_escape(v)}"' for n, v in zip(names, values)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _number(v: float) -> str:
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(float(v)) if not float(v).is_integer() else str(int(v))


class _Metric:
    kind = "untyped"

    def __init__(self, name: str, help: str, labelnames: Sequence[str] = ()):
        self.name, self.help, self.labelnames = name, help, tuple(labelnames)
        self._lock = threading.Lock()

    def _key(self, labels: dict[str, str]) -> tuple[str, ...]:
        if set(labels) != set(self.labelnames):
            raise ValueError(f"{self.name} takes labels {self.labelnames}, got {tuple(labels)}")
        return tuple(str(labels[n]) for n in self.labelnames)

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]


class Counter(_Metric):
    """A value that only goes up (``*_total``)."""

    kind = "counter"

    def __init__(self, name: str, help: str, labelnames: Sequence[str] = ()):
        super().__init__(name, help, labelnames)
        self.values: dict[tuple[str, ...], float] = {}

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            self.values[key] = self.values.get(key, 0.0) + amount

    def get(self, **labels: str) -> float:
        return self.values.get(self._key(labels), 0.0)

    def render(self) -> list[str]:
        with self._lock:
            items = sorted(self.values.items())
        return self.header() + [f"{self.name}{_labels(self.labelnames, k)} {_number(v)}" for k, v in items]


class Gauge(Counter):
    """A value that goes up and down, or is read from ``fn`` at scrape time."""

    kind = "gauge"

    def __init__(self, name: str, help: str, labelnames: Sequence[str] = (),
                 fn: Callable[[], Iterable[tuple[dict[str, str], float]] | float] | None = None):
        super().__init__(name, help, labelnames)
        self.fn = fn

    def set(self, value: float, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            self.values[key] = float(value)

    def render(self) -> list[str]:
        if self.fn is not None:
            got = self.fn()
            pairs = [({}, float(got))] if isinstance(got, (int, float)) else list(got)
            with self._lock:
                self.values = {self._key(lab): float(v) for lab, v in pairs}
        return super().render()


class Histogram(_Metric):
    """Observations counted in cumulative buckets, with their sum and count."""

    kind = "histogram"

    def __init__(self, name: str, help: str, labelnames: Sequence[str] = (),
                 buckets: Sequence[float] = LATENCY_BUCKETS):
        super().__init__(name, help, labelnames)
        self.buckets = tuple(sorted(float(b) for b in buckets)) + (math.inf,)
        self.values: dict[tuple[str, ...], list[float]] = {}  # per bucket counts (not cumulative), then sum

    def observe(self, value: float, **labels: str) -> None:
        key = self._key(labels)
        index = next(i for i, b in enumerate(self.buckets) if value <= b)
        with self._lock:
            row = self.values.setdefault(key, [0.0] * (len(self.buckets) + 1))
            row[index] += 1
            row[-1] += value

    def count(self, **labels: str) -> int:
        row = self.values.get(self._key(labels))
        return 0 if row is None else int(sum(row[:-1]))

    def render(self) -> list[str]:
        lines = self.header()
        with self._lock:
            items = sorted((k, list(v)) for k, v in self.values.items())
        for key, row in items:
            total = 0.0
            for bound, n in zip(self.buckets, row):
                total += n
                le = 'le="' + ("+Inf" if math.isinf(bound) else _number(bound)) + '"'
                lines.append(f"{self.name}_bucket{_labels(self.labelnames, key, le)} {_number(total)}")
            lines.append(f"{self.name}_sum{_labels(self.labelnames, key)} {_number(row[-1])}")
            lines.append(f"{self.name}_count{_labels(self.labelnames, key)} {_number(total)}")
        return lines


def resident_memory_bytes() -> float:
    """RSS of this process (Linux ``/proc/self/statm``; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return float(int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE"))
    except (OSError, ValueError, IndexError):
        return 0.0


class Metrics:
    """The server's metrics. ``endpoint`` labels are route templates (``/v1/predict``), ``other`` for unknown paths."""

    def __init__(self) -> None:
        start = time.time()
        self.requests = Counter("ferkit_http_requests_total", "HTTP requests answered, by endpoint, method and status",
                                ("endpoint", "method", "status"))
        self.latency = Histogram("ferkit_http_request_duration_seconds",
                                 "Time from the request's arrival to the end of its answer", ("endpoint",))
        self.in_flight = Gauge("ferkit_http_requests_in_flight", "HTTP requests being answered")
        self.errors = Counter("ferkit_errors_total",
                              "Failed requests and failed images of multi-image requests, by endpoint and error type",
                              ("endpoint", "type"))
        self.images = Counter("ferkit_images_total", "Images received, by model and outcome (ok, error)",
                              ("model", "outcome"))
        self.faces = Counter("ferkit_faces_total", "Faces recognised, by model", ("model",))
        self.frames = Counter("ferkit_video_frames_total", "Video frames recognised, by model", ("model",))
        self.batch = Histogram("ferkit_batch_faces", "Faces per forward pass (micro-batch size)", ("model",),
                               BATCH_BUCKETS)
        self.forward = Histogram("ferkit_forward_seconds", "Duration of one forward pass", ("model",))
        self.queue = Gauge("ferkit_queue_requests", "Prediction requests admitted and not yet answered")
        self.queue_capacity = Gauge("ferkit_queue_capacity", "Most prediction requests admitted at once (--max-queue)")
        self.model_info = Gauge("ferkit_model_info", "Served models (value 1 when loaded, 0 otherwise)",
                                ("model", "arch", "detector", "weights"))
        self.memory = Gauge("process_resident_memory_bytes", "Resident memory of this process",
                            fn=resident_memory_bytes)
        self.started = Gauge("process_start_time_seconds", "Start time of the server (Unix time)", fn=lambda: start)

    def all(self) -> list[_Metric]:
        return [v for v in vars(self).values() if isinstance(v, _Metric)]

    def render(self) -> str:
        return "\n".join(line for m in self.all() for line in m.render()) + "\n"
