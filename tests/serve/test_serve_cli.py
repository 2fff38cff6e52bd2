"""``ferkit serve``: its help, flag checks, and the real command in a subprocess (JSON logs, SIGTERM, workers)."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time

import pytest

from ferkit.cli.main import main
from ferkit.serve.background import free_port
from tests.serve._helpers import EXAMPLES, MODEL, httpx


@pytest.fixture(autouse=True)
def _keep_logging():
    """``main()`` adds a root log handler bound to this test's captured stderr: remove it afterwards, or the other
    tests' server threads would log into a closed stream."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_help_is_accurate(capsys):
    with pytest.raises(SystemExit) as e:
        main(["serve", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--model", "--checkpoint", "--detector", "--host", "--port", "--workers", "--api-key",
                 "--cors-origin", "--max-upload-mb", "--max-pixels", "--max-queue", "--request-timeout",
                 "--max-wait-ms", "--batch-size", "--formats", "--log-format", "--graceful-timeout",
                 "FERKIT_SERVE_API_KEY", "FERKIT_SERVE_CORS_ORIGINS", "/v1/predict", "repeat to serve several"):
        assert flag in out, flag
    assert "default 127.0.0.1" in out


def test_flag_errors_exit_2(capsys):
    assert main(["serve", "--model", "poster_v2", "--model", "poster_v2_open", "--checkpoint", "a.pt"]) == 2
    assert "one --checkpoint per --model" in capsys.readouterr().err
    assert main(["serve", "--model", MODEL, "--max-queue", "0"]) == 2
    assert "max_queue must be >= 1" in capsys.readouterr().err
    assert main(["serve", "--model", MODEL, "--formats", "jpeg,heic"]) == 2
    assert "unknown image format(s) HEIC" in capsys.readouterr().err


def test_model_names():
    from ferkit.serve.launch import model_name

    taken: set[str] = set()
    assert model_name(None, None, taken) == "poster_v2_open.ferplus"
    assert model_name("exports/poster.onnx", None, taken) == "poster.onnx"
    taken.add("poster_v2")
    assert model_name("poster_v2", "runs/a/best.pt", taken) == "poster_v2@best"


def spawn(*args: str, env: dict | None = None) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [sys.executable, "-m", "ferkit", "serve", "--port", str(port), "--log-format", "json", *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})
    return proc, f"http://127.0.0.1:{port}"


def wait_ready(proc: subprocess.Popen, url: str, timeout: float = 180) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise AssertionError(f"ferkit serve exited with {proc.returncode}: {proc.stderr.read()}")
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    proc.kill()
    raise AssertionError("ferkit serve did not become ready")


def stop(proc: subprocess.Popen) -> tuple[int, list[dict]]:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, [json.loads(line) for line in proc.stderr.read().splitlines() if line.startswith("{")]


@pytest.mark.slow
def test_serve_command_end_to_end():
    proc, url = spawn("--model", MODEL, "--threads", "1", "--max-images", "3", env={"FERKIT_SERVE_API_KEY": "k1"})
    try:
        wait_ready(proc, url)
        photo = (EXAMPLES / "grace_hopper.jpg").read_bytes()
        assert httpx.post(url + "/v1/predict", content=photo, headers={"Content-Type": "image/jpeg"}).status_code \
            == 401
        r = httpx.post(url + "/v1/predict", content=photo, timeout=60,
                       headers={"Content-Type": "image/jpeg", "X-API-Key": "k1", "X-Request-ID": "req-42"})
        assert r.status_code == 200 and len(r.json()["records"][0]["faces"]) == 1
        models = httpx.get(url + "/v1/models", headers={"X-API-Key": "k1"}).json()
        assert models["models"][0]["weights"] == "untrained" and models["limits"]["max_images"] == 3
    finally:
        code, logs = stop(proc)
    assert code == 0
    access = [x for x in logs if x["logger"] == "ferkit.serve.access"]
    mine = next(x for x in access if x.get("request_id") == "req-42")
    assert mine["status"] == 200 and mine["path"] == "/v1/predict" and mine["faces"] == 1 and mine["duration_ms"] > 0
    assert any(x["status"] == 401 and x["error_type"] == "unauthorized" for x in access)
    messages = [x["message"] for x in logs]
    assert any(m.startswith(f"model {MODEL} ready") for m in messages) and "shut down" in messages


@pytest.mark.slow
def _post_when_ready(client, url: str, body: bytes, seconds: float = 60):
    """POST, retrying while the server answers 503 (a worker still loading its model: the other one may already
    have passed /readyz), as a client that honours Retry-After would (readiness is per worker process)."""
    end = time.monotonic() + seconds
    while True:
        r = client.post(url, content=body, headers={"Content-Type": "image/jpeg"}, timeout=60)
        if r.status_code != 503 or time.monotonic() > end:
            return r
        time.sleep(0.5)


@pytest.mark.slow
def test_serve_with_two_workers():
    proc, url = spawn("--model", MODEL, "--workers", "2", "--threads", "1")
    try:
        wait_ready(proc, url)
        photo = (EXAMPLES / "astronaut.jpg").read_bytes()
        pids = set()
        for _ in range(12):
            with httpx.Client() as c:  # a new connection each time
                wait_ready(proc, url)
                pids.add(c.get(url + "/healthz").json()["pid"])
                r = _post_when_ready(c, url + "/v1/predict", photo)
                assert r.status_code == 200
    finally:
        code, logs = stop(proc)
    started = [x for x in logs if x["message"].startswith("Started server process")]
    assert len(started) == 2 and proc.pid not in pids
    assert code == 0
