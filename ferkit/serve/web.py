"""The browser page (``GET /``) and its files, served from the package (``ferkit/resources/web``), and the OpenAPI
page ``/docs`` with Swagger UI from the ``swagger_ui_bundle`` package when installed (no CDN), else from its CDN."""

from __future__ import annotations

import mimetypes
from importlib.resources import files

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response

from ferkit.serve.errors import ServeError

#: The page talks only to its own server: no CDN, nothing from elsewhere.
PAGE_CSP = ("default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob: mediastream:; "
            "connect-src 'self'; style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'")
DOCS_ASSETS = ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png")


def web_files() -> dict[str, tuple[bytes, str]]:
    """``name -> (bytes, media type)`` of every file of the page (read once)."""
    folder = files("ferkit") / "resources" / "web"
    out = {}
    for entry in folder.iterdir():
        if entry.is_file() and not entry.name.startswith("."):
            kind = mimetypes.guess_type(entry.name)[0] or "application/octet-stream"
            out[entry.name] = (entry.read_bytes(), kind + ("; charset=utf-8" if kind.startswith("text/") or
                                                           kind.endswith("javascript") else ""))
    return out


def _swagger_folder():
    try:
        from swagger_ui_bundle import swagger_ui_path
    except ImportError:
        return None
    return swagger_ui_path


def web_router(title: str) -> APIRouter:
    """Routes ``/``, ``/static/{name}``, ``/docs`` and ``/docs/assets/{name}``."""
    router = APIRouter(include_in_schema=False)
    assets = web_files()
    swagger = _swagger_folder()

    @router.get("/")
    async def index() -> Response:
        body, kind = assets["index.html"]
        return Response(body, media_type=kind, headers={"Content-Security-Policy": PAGE_CSP,
                                                        "Cache-Control": "no-cache"})

    @router.get("/static/{name}")
    async def static(name: str) -> Response:
        if name not in assets:
            raise ServeError(404, f"no such file: /static/{name}")
        body, kind = assets[name]
        return Response(body, media_type=kind, headers={"Cache-Control": "no-cache"})

    @router.get("/docs")
    async def docs(request: Request) -> HTMLResponse:
        local = {} if swagger is None else {"swagger_js_url": "docs/assets/swagger-ui-bundle.js",
                                            "swagger_css_url": "docs/assets/swagger-ui.css",
                                            "swagger_favicon_url": "docs/assets/favicon-32x32.png"}
        return get_swagger_ui_html(openapi_url="openapi.json", title=f"{title} - API", **local)

    @router.get("/docs/assets/{name}")
    async def docs_asset(name: str) -> Response:
        if swagger is None or name not in DOCS_ASSETS:
            raise ServeError(404, f"no such file: /docs/assets/{name}")
        entry = swagger / name
        return Response(entry.read_bytes(), media_type=mimetypes.guess_type(name)[0] or "application/octet-stream",
                        headers={"Cache-Control": "max-age=86400"})

    return router
