"""Running an app with uvicorn: one process (an app object), or ``workers`` processes that each build the app with a
factory from settings passed in an environment variable (see :func:`ferkit.serve.launch.serve_models`).
SIGINT/SIGTERM stop accepting connections, let the requests in flight finish (at most ``graceful_timeout`` seconds),
then stop the models' threads."""

from __future__ import annotations

import ipaddress
import json
import logging
import os
from typing import Any

from ferkit.serve import logs

log = logging.getLogger("ferkit.serve")
#: The parsed ``ferkit serve`` arguments (a JSON object) for worker processes, which rebuild the app from them.
ENV_ARGS = "FERKIT_SERVE_ARGS"


def uvicorn_options(host: str, port: int, graceful_timeout: float, **extra: Any) -> dict[str, Any]:
    """The uvicorn settings ferkit uses: its own logging and access log, no ``Server`` header, graceful stop."""
    return {"host": host, "port": int(port), "log_config": None, "access_log": False, "server_header": False,
            "timeout_graceful_shutdown": graceful_timeout, "lifespan": "on", "timeout_keep_alive": 5, **extra}


def warn_if_exposed(host: str, api_key: str | None) -> None:
    if not is_loopback(host) and not api_key:
        log.warning("listening on %s without an API key: anyone who can reach this address can use the server "
                    "(set --api-key or FERKIT_SERVE_API_KEY)", host)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run(app: Any, *, host: str = "127.0.0.1", port: int = 8000, log_format: str | None = "auto",
        graceful_timeout: float = 30.0, **uvicorn_kw: Any) -> None:
    """Serve ``app`` (from :func:`ferkit.serve.create_app`) in this process until SIGINT/SIGTERM.

    ``log_format``: ``auto``, ``json`` or ``text`` (see :func:`ferkit.serve.logs.configure`); None keeps the logging
    set-up as it is."""
    import uvicorn

    if log_format is not None:
        logs.configure(log_format)
    key = getattr(getattr(app, "state", None), "ferkit", None)
    warn_if_exposed(host, key.limits.api_key if key is not None else None)
    uvicorn.Server(uvicorn.Config(app, **uvicorn_options(host, port, graceful_timeout, **uvicorn_kw))).run()


def run_workers(settings: dict[str, Any], *, workers: int, host: str, port: int, graceful_timeout: float,
                factory: str = "ferkit.serve.launch:app_from_env") -> None:
    """Serve with ``workers`` processes, each building its app with ``factory`` (``"module:function"``, called
    without arguments) from ``settings``, a JSON object it reads from ``FERKIT_SERVE_ARGS``."""
    import uvicorn

    os.environ[ENV_ARGS] = json.dumps(settings)
    uvicorn.run(factory, factory=True, workers=int(workers), **uvicorn_options(host, port, graceful_timeout))
