"""Micro-batching: face crops of concurrent requests go through the model together, in one forward pass, on one
worker thread (never on the event loop).

A request submits its crops and awaits the logits. The collector takes the first waiting job, then every job that
arrives within ``max_wait`` seconds (or is already queued because the previous forward pass was running) until
``max_batch`` faces; a job is never split across batches, and a job larger than ``max_batch`` runs alone, in chunks of
``max_batch``. Jobs whose request gave up (timeout, disconnect) are dropped before the forward pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import torch

log = logging.getLogger(__name__)


@dataclass
class _Job:
    crops: torch.Tensor
    future: asyncio.Future


class MicroBatcher:
    """Batch ``forward`` calls across requests.

    Args:
        forward: (N, 3, S, S) float32 -> (N, C) logits; called on the batcher's own thread.
        max_batch: most faces per forward pass. max_wait: seconds the first face of a batch waits for company.
        name: thread name suffix (the model's name). on_batch: called with (faces, seconds) after each forward pass.
    """

    def __init__(self, forward: Callable[[torch.Tensor], torch.Tensor], *, max_batch: int = 16,
                 max_wait: float = 0.005, name: str = "model",
                 on_batch: Callable[[int, float], None] | None = None):
        if int(max_batch) < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self.forward, self.max_batch, self.max_wait = forward, int(max_batch), max(0.0, float(max_wait))
        self.name, self.on_batch = name, on_batch
        self.loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[_Job] | None = None
        self._carry: _Job | None = None
        self._task: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None
        self.batches = 0

    async def start(self) -> None:
        """Start the collector on the running loop (idempotent)."""
        if self._task is not None:
            return
        self.loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"ferkit-forward-{self.name}")
        self._task = asyncio.create_task(self._collect(), name=f"ferkit-batcher-{self.name}")

    async def close(self, timeout: float = 30.0) -> None:
        """Stop the collector once the queued jobs are done (at most ``timeout`` seconds), then the forward thread."""
        if self._task is None:
            return
        waited = 0.0
        while (self._queue.qsize() or self._carry is not None) and waited < timeout:
            await asyncio.sleep(0.01)
            waited += 0.01
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._executor.shutdown(wait=True)
        self._task = None

    @property
    def pending(self) -> int:
        """Jobs waiting for a forward pass."""
        return (self._queue.qsize() if self._queue is not None else 0) + (self._carry is not None)

    async def submit(self, crops: torch.Tensor) -> torch.Tensor:
        """Logits (N, C) of ``crops`` (N, 3, S, S); an empty batch gives (0, 0) without a forward pass."""
        if crops.shape[0] == 0:
            return torch.zeros((0, 0))
        if self._task is None:
            raise RuntimeError("the batcher is not running (start() was not called, or it was closed)")
        job = _Job(crops, self.loop.create_future())
        self._queue.put_nowait(job)
        return await job.future

    def submit_threadsafe(self, crops: torch.Tensor, timeout: float | None = None) -> torch.Tensor:
        """:meth:`submit` from another thread (e.g. a video reader); blocks until the logits are ready."""
        return asyncio.run_coroutine_threadsafe(self.submit(crops), self.loop).result(timeout)

    async def _next(self, timeout: float | None) -> _Job | None:
        if self._carry is not None:
            job, self._carry = self._carry, None
            return job
        try:
            return self._queue.get_nowait()
        except asyncio.QueueEmpty:
            if timeout is not None and timeout <= 0:
                return None
        try:
            return await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError:
            return None

    async def _collect(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            first = await self._next(None)
            jobs, faces = [first], len(first.crops)
            deadline = loop.time() + self.max_wait
            while faces < self.max_batch:
                job = await self._next(deadline - loop.time())
                if job is None:
                    break
                if faces + len(job.crops) > self.max_batch:
                    self._carry = job
                    break
                jobs.append(job)
                faces += len(job.crops)
            jobs = [j for j in jobs if not j.future.done()]  # their requests gave up
            if jobs:
                await self._run(loop, jobs)

    async def _run(self, loop: asyncio.AbstractEventLoop, jobs: list[_Job]) -> None:
        batch = torch.cat([j.crops for j in jobs]) if len(jobs) > 1 else jobs[0].crops
        try:
            logits, seconds = await loop.run_in_executor(self._executor, self._forward, batch)
        except Exception as e:  # noqa: BLE001 - the requests get the error, the batcher keeps running
            log.exception("forward pass of %d faces failed", len(batch))
            for j in jobs:
                if not j.future.done():
                    j.future.set_exception(e)
            return
        self.batches += 1
        if self.on_batch is not None:
            self.on_batch(len(batch), seconds)
        start = 0
        for j in jobs:
            n = len(j.crops)
            if not j.future.done():
                j.future.set_result(logits[start:start + n])
            start += n

    def _forward(self, batch: torch.Tensor) -> tuple[torch.Tensor, float]:
        t = time.perf_counter()
        out = torch.cat([self.forward(part) for part in batch.split(self.max_batch)])
        return out, time.perf_counter() - t
