"""The HTTP endpoints: prediction (images, video), models, health, readiness and metrics."""

from __future__ import annotations

import asyncio
import os
import time

from fastapi import APIRouter, Query, Request, Security
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from fastapi.security import APIKeyHeader

from ferkit import __version__
from ferkit.serve import schemas
from ferkit.serve.errors import ServeError
from ferkit.serve.metrics import CONTENT_TYPE
from ferkit.serve.pipeline import ANNOTATION_TYPES, ImagePipeline
from ferkit.serve.state import ServerState
from ferkit.serve.uploads import check_image_request, read_images

router = APIRouter()
#: Declares the key for the OpenAPI document and /docs' "Authorize"; :class:`~ferkit.serve.middleware.ApiKeyGuard`
#: does the checking (before the body is read).
api_key_doc = APIKeyHeader(name="X-API-Key", auto_error=False, description="needed when the server has an API key")

_BINARY = {"schema": {"type": "string", "format": "binary"}}
PREDICT_BODY = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {"type": "object", "properties": {
        "file": {"type": "array", "items": {"type": "string", "format": "binary"},
                 "description": "one or more images; every file field counts, whatever its name"}}}},
    "image/jpeg": _BINARY, "image/png": _BINARY, "image/webp": _BINARY, "application/octet-stream": _BINARY}}}
VIDEO_BODY = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {"type": "object", "properties": {"file": {"type": "string",
                                                                                 "format": "binary"}}}},
    "video/mp4": _BINARY, "application/octet-stream": _BINARY}}}
MODEL_QUERY = Query(None, description="served model name (GET /v1/models); default: the first")
DETECT_QUERY = Query(True, description="false: every image is one pre-cropped face (no detector)")


def state_of(request: Request) -> ServerState:
    return request.app.state.ferkit


def annotation_format(value: str | None) -> str | None:
    """``?annotate=`` -> ``jpeg`` / ``png`` / None."""
    v = (value or "").strip().lower()
    if v in ("", "0", "false", "no", "none"):
        return None
    if v in ("1", "true", "yes", "jpeg", "jpg"):
        return "jpeg"
    if v == "png":
        return "png"
    raise ServeError(422, f"annotate must be true, false, jpeg or png; got {value!r}", type="invalid_parameter")


@router.post("/v1/predict", tags=["predict"], response_model=schemas.PredictOut, openapi_extra=PREDICT_BODY,
             responses=schemas.ERRORS, dependencies=[Security(api_key_doc)])
async def predict(request: Request, model: str | None = MODEL_QUERY, detect: bool = DETECT_QUERY,
                  annotate: str | None = Query(None, description="true/jpeg or png: add each annotated image (base64)"),
                  logits: bool = Query(False, description="add raw logits to every face")) -> JSONResponse:
    """Faces and expressions of one or several images (multipart files, or the raw bytes of one image).

    One record per image, in upload order, as ``ferkit predict --format json`` writes them, plus ``status``. With one
    image, a bad image fails the request (400/413/415); with several, each bad image only gets its own ``error`` and
    ``status``.
    """
    st = state_of(request)
    fmt = annotation_format(annotate)
    served = st.model(model)
    request.state.model = served.name
    start = time.monotonic()
    limits = st.limits
    check_image_request(request, max_bytes=limits.max_upload_bytes)  # refused from the headers: no slot needed
    phase = "upload"
    with st.admission.slot(limits.retry_after):
        try:
            async with asyncio.timeout(limits.request_timeout):
                uploads = await read_images(request, max_bytes=limits.max_upload_bytes, max_images=limits.max_images)
                phase = "process"
                items = await ImagePipeline(served, limits, st.pool).run(
                    uploads, detect=detect, annotate=fmt, logits=logits, deadline=start + limits.request_timeout)
        except TimeoutError:
            if phase == "upload":
                raise ServeError(408, f"the upload did not finish within {limits.request_timeout:g} s",
                                 type="upload_timeout") from None
            raise ServeError(503, f"the request took longer than the limit of {limits.request_timeout:g} s",
                             type="timeout", headers={"Retry-After": str(limits.retry_after)}) from None
    faces = sum(len(it.record.faces) for it in items)
    failed = [it for it in items if it.status != 200]
    request.state.images, request.state.faces = len(items), faces
    st.metrics.faces.inc(faces, model=served.name)
    st.metrics.images.inc(len(items) - len(failed), model=served.name, outcome="ok")
    if failed:
        st.metrics.images.inc(len(failed), model=served.name, outcome="error")
    if len(items) == 1 and failed:
        raise ServeError(failed[0].status, failed[0].record.error or "failed", type=failed[0].error_type)
    for it in failed:
        st.metrics.errors.inc(endpoint="/v1/predict", type=it.error_type or f"http_{it.status}")
    return JSONResponse({"model": served.name, "records": [it.to_dict() for it in items], "failed": len(failed),
                         "faces": faces, "seconds": round(time.monotonic() - start, 4)})


VIDEO_ANSWER = {"description": "one JSON record per processed frame (application/x-ndjson)",
                "content": {"application/x-ndjson": {"schema": schemas.VideoRecordOut.model_json_schema()}}}


@router.post("/v1/predict/video", tags=["predict"], openapi_extra=VIDEO_BODY, dependencies=[Security(api_key_doc)],
             responses={200: VIDEO_ANSWER, **schemas.ERRORS})
async def predict_video(request: Request, model: str | None = MODEL_QUERY, detect: bool = DETECT_QUERY,
                        every: int = Query(1, ge=1, description="process every N-th frame"),
                        max_frames: int | None = Query(None, ge=1, description="stop after this many processed "
                                                                               "frames (capped by the server)")
                        ) -> StreamingResponse:
    """Faces and expressions in a video, streamed as JSON lines (one record per processed frame) while it is read.

    Records are those of ``ferkit predict`` for videos (``frame``, ``timestamp``); a video that ends early or fails
    mid-way ends with an error record. Header ``X-Max-Frames``: the frame cap applied.
    """
    from ferkit.serve.video import video_answer

    st = state_of(request)
    served = st.model(model)
    request.state.model = served.name
    return await video_answer(request, st, served, every=every, max_frames=max_frames, detect=detect)


@router.get("/v1/models", tags=["server"], response_model=schemas.ModelsOut, dependencies=[Security(api_key_doc)])
async def models(request: Request) -> JSONResponse:
    """The served models: name, architecture, label names, input size, trained or untrained weights, detector."""
    st = state_of(request)
    return JSONResponse({"default": st.default,
                         "models": [m.info(default=n == st.default, max_batch=st.limits.max_batch)
                                    for n, m in st.models.items()],
                         "limits": st.limits.public(), "annotation_types": list(ANNOTATION_TYPES),
                         "version": __version__})


@router.get("/healthz", tags=["server"])
async def healthz() -> dict:
    """Liveness: 200 while the process answers (``pid``: which worker answered)."""
    return {"status": "ok", "version": __version__, "pid": os.getpid()}


@router.get("/readyz", tags=["server"], responses={503: {"description": "loading, failed, full or shutting down"}})
async def readyz(request: Request) -> JSONResponse:
    """Readiness: 200 when every model is loaded and the queue has room; 503 (with the reasons) otherwise."""
    ok, body = state_of(request).readiness()
    return JSONResponse(body, status_code=200 if ok else 503)


@router.get("/metrics", tags=["server"], response_class=PlainTextResponse)
async def metrics(request: Request) -> PlainTextResponse:
    """Prometheus metrics (text format): requests, latency, errors, images, faces, batch sizes, queue, memory."""
    return PlainTextResponse(state_of(request).metrics.render(), media_type=CONTENT_TYPE)
