"""HTTP API and web page for facial expression recognition (``ferkit serve``; extra ``ferkit[serve]``).

    >>> import ferkit
    >>> from ferkit.serve import create_app, run, serve_models
    >>> app = create_app(ferkit.load(detector="yunet"), max_upload_bytes=10_000_000)
    >>> run(app, host="127.0.0.1", port=8000)
    >>> serve_models(["poster_v2_open.ferplus"], load_options={"detector": "yunet"}, workers=2)   # = ferkit serve

Endpoints: ``POST /v1/predict`` (images), ``POST /v1/predict/video`` (JSON lines), ``GET /v1/models``, ``/healthz``,
``/readyz``, ``/metrics`` (Prometheus), ``/docs`` (OpenAPI) and the page at ``/``. See ``docs/serving.md``.
FastAPI and uvicorn are imported only when this package's functions are used, so ``import ferkit`` stays light.
"""

from __future__ import annotations

from typing import Any

from ferkit.serve.limits import ServeLimits

__all__ = ["create_app", "run", "ServeLimits", "ServedModel", "build_app", "serve_models"]


def __getattr__(name: str) -> Any:
    if name in ("create_app", "run", "ServedModel", "build_app", "serve_models"):
        try:
            if name == "create_app":
                from ferkit.serve.app import create_app as value
            elif name == "run":
                from ferkit.serve.runner import run as value
            elif name == "build_app":
                from ferkit.serve.launch import build_app as value
            elif name == "serve_models":
                from ferkit.serve.launch import serve_models as value
            else:
                from ferkit.serve.registry import ServedModel as value
        except ImportError as e:
            if e.name in ("fastapi", "uvicorn", "starlette", "multipart", "python_multipart", "pydantic"):
                raise ImportError("ferkit.serve needs the serve extra: pip install 'ferkit[serve]'") from e
            raise
        return value
    raise AttributeError(f"module 'ferkit.serve' has no attribute {name!r}")
