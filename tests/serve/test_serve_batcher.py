"""The micro-batcher alone (asyncio, a counting model) and through the server (concurrent requests share passes)."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

from ferkit.serve import ServedModel
from ferkit.serve.batcher import MicroBatcher
from tests.serve._helpers import MODEL, httpx, metric, start


class Counting:
    """(N, 3, 2, 2) -> (N, 2) logits [sum, N]; records each batch size and the thread it ran on."""

    def __init__(self, fail_on: int | None = None, delay: float = 0.0):
        self.sizes: list[int] = []
        self.threads: set[str] = set()
        self.fail_on, self.delay = fail_on, delay

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        import time

        time.sleep(self.delay)
        self.sizes.append(len(x))
        self.threads.add(threading.current_thread().name)
        if self.fail_on is not None and len(self.sizes) == self.fail_on:
            raise RuntimeError("boom")
        return torch.stack([x.flatten(1).sum(1), torch.full((len(x),), float(len(x)))], 1)


def crops(n: int, value: float) -> torch.Tensor:
    return torch.full((n, 3, 2, 2), value)


async def _run(batcher: MicroBatcher, jobs: list[torch.Tensor]) -> list[torch.Tensor]:
    await batcher.start()
    try:
        return await asyncio.gather(*(batcher.submit(j) for j in jobs))
    finally:
        await batcher.close()


def test_concurrent_jobs_share_one_forward_pass_off_the_loop():
    model = Counting()
    b = MicroBatcher(model, max_batch=16, max_wait=0.05, name="t")
    outs = asyncio.run(_run(b, [crops(1, 1.0), crops(2, 2.0), crops(3, 3.0)]))
    assert model.sizes == [6] and b.batches == 1
    assert [o.shape[0] for o in outs] == [1, 2, 3]
    assert [float(o[0, 0]) for o in outs] == [12.0, 24.0, 36.0]  # each job gets its own rows back
    assert model.threads == {"ferkit-forward-t_0"}  # the model's own thread, not the event loop's


def test_max_batch_is_respected_and_jobs_are_never_split():
    model = Counting()
    b = MicroBatcher(model, max_batch=4, max_wait=0.05)
    outs = asyncio.run(_run(b, [crops(3, 1.0), crops(3, 2.0), crops(1, 3.0), crops(9, 4.0)]))
    assert sum(model.sizes) == 16 and max(model.sizes) <= 4
    assert [len(o) for o in outs] == [3, 3, 1, 9]
    assert all(float(o[i, 0]) == 12.0 * v for o, v in zip(outs, (1, 2, 3, 4)) for i in range(len(o)))


def test_a_failed_pass_fails_its_jobs_only():
    model = Counting(fail_on=1)
    b = MicroBatcher(model, max_batch=2, max_wait=0.0)

    async def go():
        await b.start()
        try:
            first = await asyncio.gather(b.submit(crops(2, 1.0)), return_exceptions=True)
            second = await b.submit(crops(1, 1.0))
            return first, second
        finally:
            await b.close()

    first, second = asyncio.run(go())
    assert isinstance(first[0], RuntimeError) and second.shape == (1, 2)


def test_abandoned_jobs_are_skipped():
    model = Counting(delay=0.2)
    b = MicroBatcher(model, max_batch=1, max_wait=0.0)

    async def go():
        await b.start()
        try:
            running = asyncio.ensure_future(b.submit(crops(1, 1.0)))
            await asyncio.sleep(0.05)  # the first pass is running; the next job waits
            waiting = asyncio.ensure_future(b.submit(crops(1, 2.0)))
            await asyncio.sleep(0.01)
            waiting.cancel()  # its request timed out
            await running
        finally:
            await b.close()

    asyncio.run(go())
    assert model.sizes == [1]


def test_concurrent_http_requests_are_batched(recognizer, astronaut):
    srv = start(ServedModel(MODEL, recognizer), max_batch=16, max_wait_ms=100)
    try:
        with ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(lambda _: httpx.post(srv.url + "/v1/predict", content=astronaut, timeout=60,
                                                       headers={"Content-Type": "image/jpeg"}).status_code,
                                  range(8)))
        assert codes == [200] * 8
        text = httpx.get(srv.url + "/metrics").text
        passes = metric(text, "ferkit_batch_faces_count", model=MODEL)
        faces = metric(text, "ferkit_batch_faces_sum", model=MODEL)
        assert faces == 8 and passes < 8  # 8 faces in fewer forward passes than requests
    finally:
        srv.stop()


@pytest.mark.parametrize("bad", [0, -1])
def test_batcher_arguments(bad):
    with pytest.raises(ValueError, match="max_batch"):
        MicroBatcher(Counting(), max_batch=bad)
