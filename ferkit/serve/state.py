"""What one server process holds: its models, limits, metrics, thread pools and the admission counter that bounds
the requests in flight; started and stopped by the app's lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ferkit.infer.recognizer import Recognizer
from ferkit.serve.errors import ServeError, overloaded
from ferkit.serve.limits import ServeLimits
from ferkit.serve.metrics import Metrics
from ferkit.serve.registry import ServedModel

log = logging.getLogger(__name__)


class Admission:
    """At most ``capacity`` requests in flight; more are refused at once (no waiting line grows in memory).
    Used from the event loop only."""

    def __init__(self, capacity: int, metrics: Metrics):
        self.capacity, self.count, self.metrics = int(capacity), 0, metrics
        metrics.queue_capacity.set(self.capacity)

    @property
    def full(self) -> bool:
        return self.count >= self.capacity

    def acquire(self, retry_after: int) -> None:
        """Take a slot, or raise 503 ``overloaded`` with ``Retry-After``."""
        if self.full:
            raise overloaded(f"the server is busy ({self.capacity} requests in flight); retry in {retry_after} s",
                             retry_after)
        self.count += 1
        self.metrics.queue.set(self.count)

    def release(self) -> None:
        self.count = max(0, self.count - 1)
        self.metrics.queue.set(self.count)

    @contextlib.contextmanager
    def slot(self, retry_after: int) -> Iterator[None]:
        self.acquire(retry_after)
        try:
            yield
        finally:
            self.release()


class ServerState:
    """Models, limits and shared resources of one app (``app.state.ferkit``)."""

    def __init__(self, models: list[ServedModel], limits: ServeLimits):
        self.models = {m.name: m for m in models}
        self.default = models[0].name
        self.limits = limits
        self.metrics = Metrics()
        self.admission = Admission(limits.max_queue, self.metrics)
        self.videos = 0
        self.pool: ThreadPoolExecutor | None = None
        self.draining = False
        self._loading: list[asyncio.Task] = []

    # ---- lifecycle ---------------------------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def lifespan(self, app: Any) -> AsyncIterator[None]:
        await self.start()
        try:
            yield
        finally:
            await self.stop()

    async def start(self) -> None:
        """Create the pools and start every model: ready recognizers at once, factories in the background."""
        self.draining = False
        self.pool = ThreadPoolExecutor(self.limits.prep_threads, thread_name_prefix="ferkit-prep")
        for m in self.models.values():
            self._loading.append(asyncio.create_task(m.start(max_batch=self.limits.max_batch,
                                                             max_wait=self.limits.max_wait_ms / 1000.0,
                                                             metrics=self.metrics)))
        # recognizers given ready-made are started before the first request; factories load in the background
        await asyncio.gather(*(t for t, m in zip(self._loading, self.models.values())
                               if isinstance(m.source, Recognizer)))

    async def stop(self) -> None:
        """Refuse new work, let queued forward passes finish, stop the threads."""
        self.draining = True
        log.info("shutting down: finishing queued work")
        for t in self._loading:
            if not t.done():
                t.cancel()
        await asyncio.gather(*self._loading, return_exceptions=True)
        for m in self.models.values():
            await m.close()
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=False)
        log.info("shut down")

    # ---- per request -------------------------------------------------------------------------------------------
    def model(self, name: str | None) -> ServedModel:
        """The model asked for (the default for None).

        Raises:
            ServeError: 422 unknown name, 503 still loading / failed / shutting down.
        """
        if self.draining:
            raise ServeError(503, "the server is shutting down", type="shutting_down",
                             headers={"Retry-After": str(self.limits.retry_after)})
        key = name or self.default
        m = self.models.get(key)
        if m is None:
            raise ServeError(422, f"unknown model {key!r}; this server has: {', '.join(self.models)}",
                             type="unknown_model")
        if m.state == "loading":
            raise ServeError(503, f"model {key!r} is still loading; retry shortly", type="not_ready",
                             headers={"Retry-After": str(max(1, self.limits.retry_after))})
        if not m.ready:
            raise ServeError(503, f"model {key!r} is not available: {m.error or m.state}", type="model_failed")
        return m

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        models = {n: m.state for n, m in self.models.items()}
        reasons = [f"model {n} is {s}" for n, s in models.items() if s != "ready"]
        if self.draining:
            reasons.append("shutting down")
        if self.admission.full:
            reasons.append(f"queue full ({self.admission.capacity} requests in flight)")
        return not reasons, {"status": "ready" if not reasons else "not_ready", "models": models, "reasons": reasons,
                             "in_flight": self.admission.count, "capacity": self.admission.capacity}
