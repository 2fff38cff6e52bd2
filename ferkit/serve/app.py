"""``create_app``: a FastAPI application serving one or more recognizers (see ``docs/serving.md``)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware

from ferkit import __version__
from ferkit.serve.errors import ServeError, error_body
from ferkit.serve.limits import ServeLimits
from ferkit.serve.middleware import ApiKeyGuard, Telemetry
from ferkit.serve.registry import served_models
from ferkit.serve.state import ServerState

log = logging.getLogger("ferkit.serve")
TITLE = "ferkit"


def create_app(models: Any, *, limits: ServeLimits | None = None, **limit_overrides: Any) -> FastAPI:
    """A FastAPI app that recognises facial expressions over HTTP.

    Args:
        models: a :class:`ferkit.infer.Recognizer` (e.g. from :func:`ferkit.load`), a factory returning one (loaded
            at start-up, off the event loop; ``/readyz`` is 503 until then), a :class:`ServedModel`, a mapping
            ``name -> any of these`` or a list of them. The first one is the default model.
        limits: :class:`ServeLimits` (default: ``ServeLimits()``). **limit_overrides: fields of ``ServeLimits`` to
            change, e.g. ``max_upload_bytes=5_000_000, api_key="secret"``.

    Returns:
        The app; run it with ``uvicorn.run(app)`` or :func:`ferkit.serve.run`.

    Example:
        >>> app = create_app(lambda: ferkit.load(detector="yunet"), max_queue=32)
    """
    limits = limits or ServeLimits()
    if limit_overrides:
        limits = limits.replace(**limit_overrides)
    state = ServerState(served_models(models), limits)
    app = FastAPI(title=TITLE, version=__version__, lifespan=state.lifespan, docs_url=None, redoc_url=None,
                  description="Facial expression recognition: faces, boxes and expression probabilities. "
                              "See docs/serving.md.")
    app.state.ferkit = state
    _add_error_handlers(app)
    from ferkit.serve.routes import router
    from ferkit.serve.web import web_router

    app.include_router(router)
    app.include_router(web_router(TITLE))
    if limits.api_key:
        app.add_middleware(ApiKeyGuard, api_key=limits.api_key)
    if limits.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(limits.cors_origins), allow_methods=["GET", "POST"],
                           allow_headers=["X-API-Key", "Content-Type", "X-Request-ID"],
                           expose_headers=["X-Request-ID", "Retry-After", "X-Max-Frames"], max_age=600)
    app.add_middleware(Telemetry, metrics=state.metrics)  # outermost: sees every answer, 401s included
    return app


def _error(request: Request, err: ServeError) -> JSONResponse:
    request.state.error_type = err.type
    return JSONResponse(err.body(), status_code=err.status, headers=err.headers)


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServeError)
    async def serve_error(request: Request, exc: ServeError) -> JSONResponse:
        return _error(request, exc)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404:
            message = f"no such endpoint: {request.method} {request.url.path} (see /docs)"
        elif exc.status_code == 405:
            message = f"method {request.method} is not allowed on {request.url.path} (see /docs)"
        return _error(request, ServeError(exc.status_code, message, headers=dict(exc.headers or {})))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [{"loc": [str(x) for x in e.get("loc", ())], "msg": e.get("msg", "")} for e in exc.errors()]
        text = "; ".join(f"{'.'.join(d['loc'][1:] or d['loc'])}: {d['msg']}" for d in details)
        request.state.error_type = "invalid_parameter"
        return JSONResponse(error_body(422, f"invalid request: {text}", type="invalid_parameter", details=details),
                            status_code=422)

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> JSONResponse:
        rid = request.scope.get("state", {}).get("request_id", "")
        log.error("internal error on %s %s (request id %s)", request.method, request.url.path, rid,
                  exc_info=(type(exc), exc, exc.__traceback__))
        return JSONResponse(error_body(500, f"internal server error; the server log has the details (request id "
                                            f"{rid})", type="internal_error"), status_code=500)
