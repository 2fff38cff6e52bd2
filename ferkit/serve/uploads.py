"""Reading request bodies within the limits: the declared ``Content-Length`` first (413 unread), then the bytes as
they stream in (413 as soon as the limit is passed). Images come as ``multipart/form-data`` (every file field is an
image, in order) or as the raw bytes of one image (``image/*`` or ``application/octet-stream``)."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

from ferkit.serve.errors import ServeError

RAW_TYPES = ("application/octet-stream", "")
HOW = ("send multipart/form-data with file fields (curl -F file=@photo.jpg) or the bytes of one image with "
       "Content-Type image/* or application/octet-stream")


@dataclass
class Upload:
    """One uploaded file: its name (the part's file name, else its field name) and bytes."""

    name: str
    data: bytes


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def check_declared_size(request: Request, limit: int, what: str = "request body") -> None:
    """413 when ``Content-Length`` is larger than ``limit`` (the body is not read); 400 when it is not a number."""
    declared = request.headers.get("content-length")
    if declared is None:
        return
    try:
        size = int(declared)
    except ValueError:
        raise ServeError(400, f"invalid Content-Length header {declared!r}") from None
    if size > limit:
        raise ServeError(413, f"{what} of {size:,} bytes is larger than the limit of {limit:,} bytes",
                         type="upload_too_large")


async def limited(stream: AsyncIterator[bytes], limit: int, what: str = "request body") -> AsyncIterator[bytes]:
    """``stream`` that raises 413 once more than ``limit`` bytes went through."""
    total = 0
    async for chunk in stream:
        total += len(chunk)
        if total > limit:
            raise ServeError(413, f"{what} is larger than the limit of {limit:,} bytes", type="upload_too_large")
        yield chunk


def check_image_request(request: Request, *, max_bytes: int) -> None:
    """What can be refused from the headers alone: 413 for a declared size over ``max_bytes``, 415 for a content
    type that is neither multipart nor an image (cheap, so done before the request takes a queue slot)."""
    check_declared_size(request, max_bytes)
    kind = media_type(request)
    if kind != "multipart/form-data" and not kind.startswith("image/") and kind not in RAW_TYPES:
        raise ServeError(415, f"unsupported Content-Type {kind!r}; {HOW}", type="unsupported_content_type")


async def read_images(request: Request, *, max_bytes: int, max_images: int) -> list[Upload]:
    """The images of a request, in order.

    Raises:
        ServeError: 413 too large or too many images, 415 another content type, 400 malformed multipart,
            422 a form without a file.
    """
    check_image_request(request, max_bytes=max_bytes)
    kind = media_type(request)
    if kind == "multipart/form-data":
        form = await _parse_form(request, max_bytes, max_images)
        uploads = []
        try:
            for field, value in form.multi_items():
                if isinstance(value, UploadFile):
                    uploads.append(Upload(_safe_name(value.filename or field), await value.read()))
        finally:
            await form.close()
        if not uploads:
            raise ServeError(422, f"the form has no file field; {HOW}", type="no_image")
        return uploads
    body = b"".join([c async for c in limited(request.stream(), max_bytes)])
    return [Upload(_safe_name(request.query_params.get("name") or "upload"), body)]


async def _parse_form(request: Request, max_bytes: int, max_files: int):
    parser = MultiPartParser(request.headers, limited(request.stream(), max_bytes), max_files=max_files,
                             max_fields=64)
    try:
        return await parser.parse()
    except MultiPartException as e:
        msg = str(e.message if hasattr(e, "message") else e)
        if "Too many files" in msg:
            raise ServeError(413, f"too many files in one request; the limit is {max_files}",
                             type="too_many_files") from None
        raise ServeError(400, f"malformed multipart body: {msg}", type="bad_multipart") from None


def check_video_request(request: Request, *, max_bytes: int) -> None:
    """:func:`check_image_request` for videos: 413 declared size, 415 neither multipart nor ``video/*`` / raw."""
    check_declared_size(request, max_bytes, "video")
    kind = media_type(request)
    if kind != "multipart/form-data" and not kind.startswith("video/") and kind not in RAW_TYPES:
        raise ServeError(415, f"unsupported Content-Type {kind!r} for a video; send multipart/form-data with one "
                         "file field (curl -F file=@clip.mp4) or the bytes with Content-Type video/*",
                         type="unsupported_content_type")


async def save_video(request: Request, *, max_bytes: int) -> tuple[Path, str]:
    """The uploaded video written to a temporary file (the caller deletes it) and its name.

    One file field of a multipart form, or the raw bytes with ``video/*`` / ``application/octet-stream``.
    """
    check_video_request(request, max_bytes=max_bytes)
    kind = media_type(request)
    if kind == "multipart/form-data":
        form = await _parse_form(request, max_bytes, 1)
        try:
            files = [(f, v) for f, v in form.multi_items() if isinstance(v, UploadFile)]
            if not files:
                raise ServeError(422, "the form has no file field; send the video as curl -F file=@clip.mp4",
                                 type="no_video")
            name = _safe_name(files[0][1].filename or files[0][0])
            path = _temp_path(name)
            try:
                await asyncio.to_thread(_copy, files[0][1].file, path)
            except BaseException:
                path.unlink(missing_ok=True)
                raise
        finally:
            await form.close()
        return path, name
    name = _safe_name(request.query_params.get("name") or "upload.mp4")
    path = _temp_path(name)
    try:
        with open(path, "wb") as out:
            async for chunk in limited(request.stream(), max_bytes, "video"):
                out.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path, name


def _copy(src: Any, path: Path) -> None:
    src.seek(0)
    with open(path, "wb") as out:
        shutil.copyfileobj(src, out, 1 << 20)


def _temp_path(name: str) -> Path:
    suffix = Path(name).suffix.lower() if len(Path(name).suffix) <= 6 else ""
    fd, path = tempfile.mkstemp(prefix="ferkit-serve-", suffix=suffix or ".bin")
    os.close(fd)
    return Path(path)


def _safe_name(name: str) -> str:
    """A client-given file name as shown in records: its last path component, printable, at most 200 characters."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    clean = "".join(c if c.isprintable() else "?" for c in base).strip()
    return (clean or "upload")[:200]
