"""``POST /v1/predict/video``: the uploaded video is checked (opens, frame size within ``max_pixels``), then read
frame by frame by :func:`ferkit.infer.video.predict_video` on a thread, with its forward passes sent through the
model's micro-batcher, and its records streamed back as JSON lines while the video is still being read. A video holds
one queue slot and one of ``max_videos`` video slots until its stream ends."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import weakref
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import torch
from fastapi import Request
from fastapi.responses import StreamingResponse

from ferkit.infer.frames import error_message
from ferkit.infer.recognizer import Recognizer
from ferkit.infer.records import Record
from ferkit.serve.errors import ServeError
from ferkit.serve.registry import ServedModel
from ferkit.serve.state import ServerState
from ferkit.serve.uploads import check_video_request, save_video

_END = object()


class BatchedRecognizer(Recognizer):
    """A served model's recognizer whose forward passes go through its micro-batcher (and whose detection holds the
    model's detection lock), for code that drives a :class:`Recognizer` from another thread."""

    def __init__(self, model: ServedModel, *, detect: bool = True, timeout: float | None = None):
        self.__dict__.update(model.recognizer.__dict__)
        self._model, self._timeout, self._detect = model, timeout, detect
        if not detect:
            self.preprocessor = model.whole_image

    def classify(self, batch: torch.Tensor) -> torch.Tensor:
        return self._model.batcher.submit_threadsafe(batch, self._timeout)

    def detect(self, rgb: Any) -> list:
        if not self._detect:
            from ferkit.detect.base import Face

            h, w = rgb.shape[:2]
            return [Face(box=(0.0, 0.0, float(w), float(h)), score=1.0)]
        return self._model.detect(rgb)


def probe_video(path: Path, name: str, max_pixels: int) -> dict[str, Any]:
    """Frame size, rate and count of an uploaded video.

    Raises:
        ServeError: 415 when OpenCV cannot open it or read a frame size, 413 when a frame has too many pixels,
            501 without OpenCV.
    """
    from ferkit.infer.video import import_cv2

    try:
        cv2 = import_cv2()
    except ImportError as e:
        raise ServeError(501, f"this server cannot read videos: {e}", type="video_unsupported") from None
    cap = cv2.VideoCapture(str(path))
    try:
        w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
        if not cap.isOpened() or w <= 0 or h <= 0:
            raise ServeError(415, f"{name}: not a video, an unsupported codec, or a truncated/corrupt file",
                             type="not_a_video")
        if w * h > max_pixels:
            raise ServeError(413, f"{name}: frames of {w}x{h} = {w * h:,} pixels are more than the limit of "
                             f"{max_pixels:,} pixels", type="too_many_pixels")
        return {"width": w, "height": h, "fps": float(cap.get(cv2.CAP_PROP_FPS) or 0.0),
                "frames": int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)}
    finally:
        cap.release()


async def stream_records(model: ServedModel, path: Path, name: str, *, every: int, max_frames: int,
                         detect: bool, timeout: float, on_record: Callable[[Record], None],
                         on_close: Callable[[], None]) -> AsyncIterator[bytes]:
    """JSON lines, one record per processed frame (``Record.to_dict()``, ``input`` = the upload's name).

    Runs :func:`ferkit.infer.video.predict_video` on its own thread; at most 16 records wait for a slow client (the
    reader then pauses). A client that disconnects stops the reader; ``on_close`` (which deletes the file) is called
    at the end once the stream has started; the caller covers a stream that never starts. Past ``timeout`` seconds
    the stream ends with an error record.
    """
    from ferkit.infer.video import predict_video

    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue(maxsize=16)
    stop = threading.Event()
    proxy = BatchedRecognizer(model, detect=detect, timeout=timeout)
    deadline = time.monotonic() + timeout

    def put(item: Any) -> None:
        """Hand ``item`` to the stream; give up once it stopped or the deadline passed (a client gone silent)."""
        while not stop.is_set():
            if time.monotonic() > deadline + 5:
                stop.set()
                return
            fut = asyncio.run_coroutine_threadsafe(queue.put(item), loop)
            try:
                fut.result(timeout=0.5)
                return
            except TimeoutError:
                fut.cancel()

    def reader() -> None:
        try:
            for record in predict_video(proxy, path, every=every, max_frames=max_frames):
                if stop.is_set():
                    break
                record.input = name
                put(record)
        except Exception as e:  # noqa: BLE001 - becomes the stream's last record
            put(Record(name, error=error_message(e)))
        finally:
            put(_END)

    thread = threading.Thread(target=reader, name="ferkit-video", daemon=True)
    thread.start()
    last_frame = 0
    try:
        while True:
            try:
                async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                    item = await queue.get()
            except TimeoutError:
                yield _line(Record(name, error=f"video processing took longer than the limit of {timeout:g} s; "
                                   "the rest of the video was skipped", frame=last_frame))
                break
            if item is _END:
                break
            last_frame = item.frame or last_frame
            on_record(item)
            yield _line(item)
    finally:
        stop.set()
        while not queue.empty():  # unblock the reader
            queue.get_nowait()
        await asyncio.to_thread(thread.join, 30)
        on_close()


def _line(record: Record) -> bytes:
    return (json.dumps(record.to_dict()) + "\n").encode()


async def video_answer(request: Request, st: ServerState, served: ServedModel, *, every: int,
                       max_frames: int | None, detect: bool) -> StreamingResponse:
    """Take the slots, save and probe the upload, and answer with the stream of records (slots and file released
    when it ends, or when a stream that never started is collected).

    Raises:
        ServeError: 413/415 from the headers or the file, 503 busy, 408 upload too slow.
    """
    limits = st.limits
    check_video_request(request, max_bytes=limits.max_video_bytes)
    if st.videos >= limits.max_videos:
        raise ServeError(503, f"{limits.max_videos} videos are already being processed; retry later",
                         type="overloaded", headers={"Retry-After": str(max(5, limits.retry_after))})
    st.admission.acquire(limits.retry_after)
    st.videos += 1

    def release() -> None:
        st.videos -= 1
        st.admission.release()

    try:
        async with asyncio.timeout(limits.video_timeout):
            path, name = await save_video(request, max_bytes=limits.max_video_bytes)
        try:
            info = await asyncio.to_thread(probe_video, path, name, limits.max_pixels)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
    except TimeoutError:
        release()
        raise ServeError(408, f"the upload did not finish within {limits.video_timeout:g} s",
                         type="upload_timeout") from None
    except BaseException:
        release()
        raise
    finished: list[bool] = []

    def finish() -> None:  # exactly once
        if not finished:
            finished.append(True)
            path.unlink(missing_ok=True)
            release()

    def count(record: Record) -> None:
        st.metrics.frames.inc(model=served.name)
        st.metrics.faces.inc(len(record.faces), model=served.name)

    cap = min(max_frames or limits.max_video_frames, limits.max_video_frames)
    body = stream_records(served, path, name, every=every, max_frames=cap, detect=detect,
                          timeout=limits.video_timeout, on_record=count, on_close=finish)
    weakref.finalize(body, finish)  # a client gone before the first byte: the generator never runs its finally
    headers = {"X-Max-Frames": str(cap), "X-Video-Frames": str(info["frames"]),
               "X-Video-Size": f"{info['width']}x{info['height']}"}
    return StreamingResponse(body, media_type="application/x-ndjson", headers=headers)
