"""ASGI middleware: :class:`Telemetry` (request id, metrics, one structured access-log line per request) and
:class:`ApiKeyGuard` (``X-API-Key`` on ``/v1/*``). Pure ASGI, so streamed answers are timed to their last byte."""

from __future__ import annotations

import hmac
import json
import logging
import time
import uuid
from typing import Any

from ferkit.serve.errors import error_body
from ferkit.serve.metrics import Metrics

access_log = logging.getLogger("ferkit.serve.access")

#: Paths that are their own ``endpoint`` label; anything else is ``/static`` or ``other`` (bounded cardinality).
ENDPOINTS = ("/", "/healthz", "/readyz", "/metrics", "/v1/models", "/v1/predict", "/v1/predict/video", "/docs",
             "/openapi.json")


def endpoint_of(path: str) -> str:
    if path in ENDPOINTS:
        return path
    if path.startswith("/static/"):
        return "/static"
    if path.startswith("/docs/"):
        return "/docs"
    return "other"


async def send_json(send: Any, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
    raw = json.dumps(body).encode()
    hdrs = [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]
    hdrs += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": hdrs})
    await send({"type": "http.response.body", "body": raw})


class Telemetry:
    """Gives each request an id (``X-Request-ID``, kept when the client sent a sane one), counts it in the metrics
    and writes one access-log line with method, path, status, duration, client and request id.

    Error answers are counted in ``ferkit_errors_total`` under the ``type`` the handler stored in
    ``scope["state"]["error_type"]`` (the status class otherwise).
    """

    def __init__(self, app: Any, metrics: Metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        state = scope.setdefault("state", {})
        rid = _request_id(scope)
        state["request_id"] = rid
        endpoint = endpoint_of(scope.get("path", ""))
        status = {"code": 500}
        self.metrics.in_flight.inc()

        async def send_wrapper(message: dict) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + [(b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            seconds = time.perf_counter() - start
            self.metrics.in_flight.inc(-1)
            code = status["code"]
            self.metrics.requests.inc(endpoint=endpoint, method=scope.get("method", ""), status=str(code))
            self.metrics.latency.observe(seconds, endpoint=endpoint)
            if code >= 400:
                self.metrics.errors.inc(endpoint=endpoint, type=state.get("error_type") or f"http_{code}")
            client = scope.get("client")
            access_log.info("%s %s %d %.1f ms", scope.get("method"), scope.get("path"), code, 1000 * seconds,
                            extra={"method": scope.get("method"), "path": scope.get("path"), "status": code,
                                   "duration_ms": round(1000 * seconds, 2), "request_id": rid,
                                   "client": f"{client[0]}:{client[1]}" if client else None,
                                   "error_type": state.get("error_type"), "model": state.get("model"),
                                   "images": state.get("images"), "faces": state.get("faces")})


def _request_id(scope: dict) -> str:
    for key, value in scope.get("headers", []):
        if key == b"x-request-id":
            rid = value.decode("latin-1")
            if 0 < len(rid) <= 128 and all(c.isalnum() or c in "-_.:" for c in rid):
                return rid
    return uuid.uuid4().hex


class ApiKeyGuard:
    """401 for ``/v1/*`` requests without the right ``X-API-Key`` (compared in constant time); CORS pre-flight
    (``OPTIONS``) requests pass, since browsers send them without custom headers."""

    def __init__(self, app: Any, api_key: str):
        self.app, self.key = app, api_key.encode()

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope.get("path", "").startswith("/v1/") and scope.get("method") != "OPTIONS":
            given = next((v for k, v in scope.get("headers", []) if k == b"x-api-key"), None)
            if given is None or not hmac.compare_digest(given, self.key):
                scope.setdefault("state", {})["error_type"] = "unauthorized"
                msg = ("missing X-API-Key header: this server requires an API key" if given is None
                       else "wrong API key (X-API-Key header)")
                await send_json(send, 401, error_body(401, msg, type="unauthorized"),
                                {"WWW-Authenticate": 'ApiKey header="X-API-Key"'})
                return
        await self.app(scope, receive, send)
