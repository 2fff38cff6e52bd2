"""Video files and cameras, frame by frame, in constant memory (OpenCV ``VideoCapture``; extra ``ferkit[video]``).

Frames are decoded one at a time and recognised in batches of ``batch_size`` sampled frames; nothing holds the whole
video. With the recognizer's ``workers > 0`` a feeder thread decodes, worker threads detect and crop, and the caller
classifies, all at once (:mod:`ferkit.infer.pipeline`; at most ``max(2 * workers, batch_size)`` frames ahead).
``detect_every=N`` runs the detector on every N-th processed frame only and carries the faces in between with an IoU
tracker (:mod:`ferkit.infer.tracking`), which also gives each face a ``track_id``.

A file that cannot be opened, has no readable frame, or stops before the frame count in its header (truncated or
corrupt) ends with an error record (``frame`` = the first frame that could not be read) and one warning line.

FFmpeg's own log (OpenCV's video backend) is silenced: a damaged file would otherwise print a line per broken
macroblock, thousands for a long video. To see it again, set ``OPENCV_FFMPEG_LOGLEVEL`` (e.g. ``16`` for errors)
before the first video is opened; OpenCV then prints FFmpeg's messages on stdout.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ferkit.infer.frames import Frame, FramePipeline, error_message, progress_bar
from ferkit.infer.pipeline import ordered_map
from ferkit.infer.records import Record
from ferkit.infer.tracking import IouTracker

log = logging.getLogger(__name__)

FOURCC = {".mp4": "mp4v", ".avi": "MJPG", ".m4v": "mp4v", ".mov": "mp4v"}
#: AV_LOG_QUIET. OpenCV reads ``OPENCV_FFMPEG_LOGLEVEL`` once, when its FFmpeg backend is first used in the process.
FFMPEG_LOGLEVEL = "-8"


def import_cv2() -> Any:
    """``cv2``, with FFmpeg's decoder log silenced unless the user set ``OPENCV_FFMPEG_LOGLEVEL``."""
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", FFMPEG_LOGLEVEL)
    try:
        import cv2
    except ImportError as e:
        raise ImportError("video and webcam input need OpenCV: pip install 'ferkit[video]'") from e
    return cv2


def camera_index(source: Any) -> int | None:
    """The camera index when ``source`` names a camera (an int or a digit string), else None."""
    if isinstance(source, int) and not isinstance(source, bool):
        return source
    if isinstance(source, str) and source.strip().isdigit():
        return int(source)
    return None


class VideoSource:
    """An opened ``cv2.VideoCapture`` with its name, frame rate, declared frame count and a clock.

    Raises:
        FileNotFoundError: a path that does not exist. ValueError: the file or camera cannot be opened.
    """

    def __init__(self, source: Any):
        cv2 = import_cv2()
        self.camera = camera_index(source)
        if self.camera is None:
            if not Path(source).is_file():
                raise FileNotFoundError(f"video file not found: {source}")
            self.name = str(source)
            self.cap = cv2.VideoCapture(self.name)
            if not self.cap.isOpened():
                raise ValueError(f"cannot open video {source}: not a video, an unsupported codec, or a truncated/"
                                 "corrupt file")
        else:
            self.name = f"camera:{self.camera}"
            self.cap = cv2.VideoCapture(self.camera)
            if not self.cap.isOpened():
                self.cap.release()
                raise ValueError(f"cannot open camera {self.camera}: no camera with this index, or no permission to "
                                 "use it")
        fps = float(self.cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = fps if np.isfinite(fps) and fps > 0 else 0.0
        count = self.cap.get(cv2.CAP_PROP_FRAME_COUNT) if self.camera is None else 0
        self.frame_count = int(count) if np.isfinite(count) and count > 0 else None
        self.start = time.monotonic()

    def read(self, decode: bool = True) -> tuple[bool, np.ndarray | None]:
        """Next frame as BGR uint8 (``decode=False`` only advances)."""
        if decode:
            return self.cap.read()
        return self.cap.grab(), None

    def timestamp(self, index: int) -> float:
        """Seconds since the start: frame index / fps for files, wall clock for cameras (and files without fps)."""
        if self.camera is None and self.fps > 0:
            return index / self.fps
        return time.monotonic() - self.start

    def release(self) -> None:
        self.cap.release()


class VideoOutput:
    """Annotated output video written to a temporary file and renamed over ``path`` when closed."""

    def __init__(self, path: str | os.PathLike, fps: float):
        self.path = Path(path)
        ext = self.path.suffix.lower()
        if ext not in FOURCC:
            raise ValueError(f"annotated video must end with one of {', '.join(FOURCC)}, got {self.path.name}")
        self.tmp = self.path.with_name(f".{self.path.stem}.partial{ext}")
        self.fps = fps if fps > 0 else 25.0
        self.writer = None

    def write(self, rgb: np.ndarray) -> None:
        cv2 = import_cv2()
        if self.writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            h, w = rgb.shape[:2]
            self.writer = cv2.VideoWriter(str(self.tmp), cv2.VideoWriter_fourcc(*FOURCC[self.path.suffix.lower()]),
                                          self.fps, (w, h))
            if not self.writer.isOpened():
                raise ValueError(f"cannot write video {self.path} (codec {FOURCC[self.path.suffix.lower()]})")
        self.writer.write(np.ascontiguousarray(rgb[:, :, ::-1]))

    def close(self, keep: bool = True) -> None:
        if self.writer is not None:
            self.writer.release()
            if keep:
                os.replace(self.tmp, self.path)
        self.tmp.unlink(missing_ok=True)


def predict_video(recognizer: FramePipeline, source: Any, *, every: int = 1, max_frames: int | None = None,
                  out: str | os.PathLike | None = None, progress: bool = False, detect_every: int = 1,
                  track: bool | None = None) -> Iterator[Record]:
    """Yield one record per processed frame (``frame``, ``timestamp``, ``faces``), then an error record if the video
    could not be opened or ended before its declared length.

    Args:
        recognizer: the :class:`~ferkit.infer.Recognizer`. source: video path or camera index.
        every: process every N-th frame (others are skipped without decoding unless ``out`` needs them).
        max_frames: stop after this many processed frames (cameras run until interrupted otherwise).
        out: annotated output video (``.mp4``/``.avi``); skipped frames carry the latest boxes.
        detect_every: run the detector on every N-th processed frame; the frames in between get the faces of the
            tracks seen at the last detector frame, moved at constant velocity (:class:`IouTracker`).
        track: add ``track_id`` to every face (None: when ``detect_every > 1``).
    """
    if int(every) < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    if int(detect_every) < 1:
        raise ValueError(f"detect_every must be >= 1, got {detect_every}")
    try:
        src = VideoSource(source)
    except (OSError, ValueError) as e:
        cam = camera_index(source)
        if cam is None:
            log.warning("%s", e)
        yield Record(str(source) if cam is None else f"camera:{cam}", error=error_message(e), frame=0, timestamp=0.0)
        return
    stream = _FrameStream(recognizer, src, int(every), max_frames, out, progress, int(detect_every),
                          int(detect_every) > 1 if track is None else bool(track))
    try:
        yield from stream.run()
    finally:
        stream.close()


class _FrameStream:
    """The loop of :func:`predict_video`: read, sample, (detect | track), batch, recognise, annotate, yield.

    Stage 1 (:meth:`_decoded`, then :meth:`_stage`) may run in pipeline threads; the tracker, the batching, the
    classification and the output video run in the caller's thread, in frame order.
    """

    def __init__(self, recognizer: FramePipeline, src: VideoSource, every: int, max_frames: int | None,
                 out: str | os.PathLike | None, progress: bool, detect_every: int = 1, track: bool = False):
        self.rec, self.src, self.every, self.max_frames = recognizer, src, every, max_frames
        self.output = VideoOutput(out, src.fps) if out is not None else None
        self.pending: list[Frame] = []
        self.to_write: list[tuple[np.ndarray, int]] = []  # (rgb, index into pending or -1 = latest faces)
        self.latest: list = []
        self.failed = False
        self.detect_every, self.track = detect_every, track
        self.tracker = IouTracker() if track or detect_every > 1 else None
        self.workers = int(getattr(recognizer, "workers", 0))
        self.read = self.processed = 0
        total = None if src.frame_count is None else -(-src.frame_count // every)
        total = total if max_frames is None else min(total or max_frames, max_frames)
        self.bar = progress_bar(total, "frames", progress)

    def run(self) -> Iterator[Record]:
        bs = self.rec.batch_size
        stage1 = ordered_map(self._stage, self._decoded(), self.workers, ahead=max(2 * self.workers, bs))
        with contextlib.closing(stage1):  # stops the pipeline threads when the caller stops early
            for rgb, step, frame in stage1:
                if frame is not None:
                    if self.tracker is not None:
                        self._track(frame, step)
                    self.pending.append(frame)
                if self.output is not None:
                    self.to_write.append((rgb, len(self.pending) - 1 if frame is not None else -1))
                if len(self.pending) >= bs or len(self.to_write) >= 4 * bs:
                    yield from self._flush()
        yield from self._flush()
        end = self._end_error(self.read, self.processed)
        if end is not None:
            yield end

    def _decoded(self) -> Iterator[tuple[int, np.ndarray | None, int | None, float]]:
        """``(frame index, RGB or None when only grabbed, processed step or None when not sampled, timestamp)``, one
        frame at a time (the pipeline's feeder thread when ``workers > 0``); counts frames into ``read`` and
        ``processed``."""
        index = processed = 0
        try:
            while self.max_frames is None or processed < self.max_frames:
                sampled = index % self.every == 0
                ok, bgr = self.src.read(decode=sampled or self.output is not None)
                if not ok:
                    break
                rgb = np.ascontiguousarray(bgr[:, :, ::-1]) if bgr is not None else None
                yield index, rgb, processed if sampled else None, self.src.timestamp(index)
                processed += sampled
                index += 1
        finally:
            self.read, self.processed = index, processed

    def _stage(self, item: tuple[int, np.ndarray | None, int | None, float]) -> tuple[Any, int | None, Frame | None]:
        """Detection (and, in a worker, cropping) of a sampled frame on which the detector runs."""
        index, rgb, step, timestamp = item
        if step is None:
            return rgb, None, None
        frame = Frame(Record(self.src.name, frame=index, timestamp=timestamp, untrained=self.rec.untrained))
        if step % self.detect_every:  # faces carried by the tracker, in order (run)
            frame.rgb, frame.detected = rgb, False
            return rgb, step, frame
        try:
            frame.faces = self.rec.detect(rgb)
            frame.rgb = rgb
        except Exception as e:  # noqa: BLE001 - one bad frame must not stop the video
            frame.record.error = error_message(e)
        if self.workers:
            self.rec.crop_faces(frame)
        return rgb, step, frame

    def _track(self, frame: Frame, step: int) -> None:
        if frame.detected:
            if frame.rgb is None:  # the detector failed on this frame: the tracks wait for the next one
                return
            ids = self.tracker.update(frame.faces, step)
        else:
            frame.faces, ids = self.tracker.carry(step)
        frame.track_ids = ids if self.track else None

    def _flush(self) -> Iterator[Record]:
        frames = self.rec.recognize(self.pending)
        if self.output is not None:
            self._write(frames)
        self.pending, self.to_write = [], []
        self.bar.update(len(frames))
        yield from (f.record for f in frames)

    def _write(self, frames: list[Frame]) -> None:
        from ferkit.infer.draw import annotate

        for rgb, owner in self.to_write:
            if owner >= 0:
                self.latest = frames[owner].record.faces
            self.output.write(annotate(rgb, self.latest, untrained=self.rec.untrained))

    def _end_error(self, read: int, processed: int) -> Record | None:
        if self.max_frames is not None and processed >= self.max_frames:
            return None
        expected = self.src.frame_count
        if read == 0:
            msg = "video has no readable frame (empty, truncated or corrupt file)"
        elif self.src.camera is not None:
            msg = f"camera stopped delivering frames after {read} frames"
        elif expected is not None and read < expected - 1:
            msg = f"video ended early: read {read} of {expected} frames (truncated or corrupt file)"
        else:
            return None
        self.failed = True
        if self.src.camera is None:
            log.warning("video %s: %s", self.src.name, msg)
        return Record(self.src.name, error=msg, frame=read, timestamp=self.src.timestamp(read))

    def close(self) -> None:
        self.bar.close()
        self.src.release()
        if self.output is not None:
            self.output.close(keep=True)
