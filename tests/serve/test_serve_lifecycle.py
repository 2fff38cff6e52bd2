"""Overload, time limits, start-up and shutdown: a full queue answers 503 + Retry-After, a slow request 503
``timeout``, models given as factories load in the background, a stop lets requests in flight finish, and a failure
inside the model is a JSON 500 that leaves the server running."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from ferkit.serve import ServedModel
from tests.serve._helpers import MODEL, SlowDetector, httpx, metric, start, variant

JPEG = {"Content-Type": "image/jpeg"}


def test_full_queue_answers_503_with_retry_after(recognizer, astronaut):
    srv = start(ServedModel(MODEL, variant(recognizer, SlowDetector(0.6))), max_queue=2, prep_threads=2)
    try:
        with ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(lambda _: httpx.post(srv.url + "/v1/predict", content=astronaut, headers=JPEG,
                                                         timeout=60), range(6)))
        codes = sorted(r.status_code for r in answers)
        assert codes.count(200) >= 2 and codes.count(503) >= 1 and set(codes) <= {200, 503}
        busy = next(r for r in answers if r.status_code == 503)
        assert busy.headers["retry-after"] == "1" and busy.json()["error"]["type"] == "overloaded"
        assert httpx.get(srv.url + "/readyz").status_code == 200  # free again
        assert metric(httpx.get(srv.url + "/metrics").text, "ferkit_queue_capacity") == 2
    finally:
        srv.stop()


def test_request_timeout(recognizer, astronaut):
    srv = start(ServedModel(MODEL, variant(recognizer, SlowDetector(1.5))), request_timeout=0.5)
    try:
        r = httpx.post(srv.url + "/v1/predict", content=astronaut, headers=JPEG, timeout=60)
        assert r.status_code == 503 and r.json()["error"]["type"] == "timeout" and r.headers["retry-after"]
        assert "0.5 s" in r.json()["error"]["message"]
    finally:
        srv.stop()


def test_stop_finishes_requests_in_flight(recognizer, astronaut):
    srv = start(ServedModel(MODEL, variant(recognizer, SlowDetector(1.0))))
    result = {}

    def call():
        result["r"] = httpx.post(srv.url + "/v1/predict", content=astronaut, headers=JPEG, timeout=60)

    t = threading.Thread(target=call)
    t.start()
    time.sleep(0.3)  # the request is being processed
    srv.stop()  # what SIGTERM does
    t.join(30)
    assert result["r"].status_code == 200 and len(result["r"].json()["records"][0]["faces"]) == 1
    assert not srv.thread.is_alive()
    state = srv.app.state.ferkit
    assert state.draining and state.models[MODEL].state == "closed"


def test_factories_load_in_the_background(recognizer, astronaut):
    gate = threading.Event()

    def slow_factory():
        gate.wait(30)
        return recognizer

    def broken_factory():
        raise ValueError("checkpoint xyz.pt does not fit poster_v2_open")

    srv = start({"slow": slow_factory, "broken": broken_factory})
    try:
        ready = httpx.get(srv.url + "/readyz")
        assert ready.status_code == 503 and ready.json()["models"] == {"slow": "loading", "broken": "failed"}
        assert httpx.get(srv.url + "/healthz").status_code == 200
        r = httpx.post(srv.url + "/v1/predict", content=astronaut, headers=JPEG)
        assert r.status_code == 503 and r.json()["error"]["type"] == "not_ready" and r.headers["retry-after"]
        gate.set()
        for _ in range(100):
            if httpx.get(srv.url + "/v1/models").json()["models"][0]["state"] == "ready":
                break
            time.sleep(0.05)
        assert httpx.post(srv.url + "/v1/predict?model=slow", content=astronaut, headers=JPEG).status_code == 200
        r = httpx.post(srv.url + "/v1/predict?model=broken", content=astronaut, headers=JPEG)
        assert r.status_code == 503 and "does not fit poster_v2_open" in r.json()["error"]["message"]
        info = {m["name"]: m for m in httpx.get(srv.url + "/v1/models").json()["models"]}
        assert info["broken"]["state"] == "failed" and "xyz.pt" in info["broken"]["error"]
        assert httpx.get(srv.url + "/readyz").json()["reasons"] == ["model broken is failed"]
    finally:
        gate.set()
        srv.stop()


class BrokenBackend:
    """The real backend's metadata, but every forward pass fails."""

    def __init__(self, real):
        self.real = real
        self.name, self.label_names, self.data_config = real.name, real.label_names, real.data_config
        self.model_name, self.untrained = real.model_name, True

    def logits(self, batch):
        raise RuntimeError("CUDA error: device-side assert triggered (simulated)")


def test_internal_failure_is_a_json_500_and_the_server_survives(recognizer, astronaut):
    broken = variant(recognizer, backend=BrokenBackend(recognizer.backend))
    srv = start({"broken": broken, "fine": recognizer})
    try:
        r = httpx.post(srv.url + "/v1/predict?model=broken", content=astronaut, headers=JPEG, timeout=60)
        assert r.status_code == 500 and r.headers["content-type"] == "application/json"
        err = r.json()["error"]
        assert err["type"] == "internal_error" and "request id" in err["message"]
        assert "Traceback" not in r.text and "CUDA" not in r.text  # details stay in the server log
        assert httpx.post(srv.url + "/v1/predict?model=fine", content=astronaut, headers=JPEG).status_code == 200
        assert httpx.get(srv.url + "/healthz").status_code == 200
    finally:
        srv.stop()
