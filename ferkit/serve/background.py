"""Run an app on a free local port in a background thread (tests, benchmarks, notebooks).

    >>> with BackgroundServer(create_app(rec)) as srv:
    ...     httpx.get(srv.url + "/healthz")
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class BackgroundServer:
    """uvicorn serving ``app`` on ``host:port`` (a free port by default) in a daemon thread (no signal handlers).

    ``stop()`` does what SIGTERM does: stop accepting, finish requests in flight (``graceful_timeout``), run the
    app's shutdown.
    """

    def __init__(self, app: Any, *, host: str = "127.0.0.1", port: int | None = None, graceful_timeout: float = 10.0,
                 **uvicorn_kw: Any):
        import uvicorn

        from ferkit.serve.runner import uvicorn_options

        self.app, self.host, self.port = app, host, port or free_port(host)
        self.server = uvicorn.Server(uvicorn.Config(app, **uvicorn_options(self.host, self.port, graceful_timeout,
                                                                           **uvicorn_kw)))
        self.thread = threading.Thread(target=self.server.run, name="ferkit-serve", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 60.0) -> BackgroundServer:
        self.thread.start()
        end = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError(f"the server on {self.url} stopped while starting (see the log)")
            if time.monotonic() > end:
                raise TimeoutError(f"the server on {self.url} did not start within {timeout:g} s")
            time.sleep(0.02)
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
