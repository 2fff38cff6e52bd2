"""``Recognizer``: images in, one :class:`~ferkit.infer.records.Record` per image out (faces, boxes, expressions).

Pipeline per batch of ``batch_size`` images: read (errors become the record's ``error``), detect faces, crop each face
like the model's training images, run the classifier on all faces of the batch at once (in chunks of ``batch_size``
faces), softmax in float64 so that the probabilities sum to 1.

With ``workers > 0`` (the default of :func:`ferkit.load`) reading, detection and cropping run in worker threads ahead
of the classification of the previous batch (:mod:`ferkit.infer.pipeline`); the batches, and so the results, are the
same as with ``workers=0``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

from ferkit.detect.base import Face
from ferkit.infer import inputs
from ferkit.infer.detection import as_face
from ferkit.infer.frames import Frame, chunks, error_message, progress_bar
from ferkit.infer.pipeline import SerialDetector, ordered_map, resolve_workers
from ferkit.infer.preprocess import Preprocessor
from ferkit.infer.records import FaceResult, Record
from ferkit.infer.video import predict_video

log = logging.getLogger(__name__)

__all__ = ["Recognizer", "Frame", "error_message"]  # the last two live in frames.py (shared with video.py)


class Recognizer:
    """Faces in, expressions out. Create it with :func:`ferkit.load`.

    Args:
        backend: :class:`~ferkit.infer.backends.TorchBackend` or :class:`~ferkit.infer.backends.OnnxBackend`.
        detector: object with ``detect(rgb_uint8) -> list[Face]``. detector_name: its name (for ``repr`` / crops).
        crop: resolved crop settings (:func:`ferkit.infer.preprocess.resolve_crop`).
        batch_size: images read per step and faces per forward pass. logits: add raw logits to every face.
        channel_order: colour order of numpy inputs, ``"rgb"`` or ``"bgr"`` (OpenCV arrays).
        workers: threads that read, detect and crop ahead of the classifier (None: ``pipeline.DEFAULT_WORKERS``;
            0: everything in the calling thread, one batch at a time).
        detect_every, track: video defaults of :meth:`predict_video` (run the detector on every N-th processed frame
            and track faces in between; ``track_id`` per face).
    """

    def __init__(self, backend: Any, detector: Any, *, detector_name: str, crop: dict[str, Any], batch_size: int = 8,
                 logits: bool = False, channel_order: str = "rgb", workers: int | None = None, detect_every: int = 1,
                 track: bool | None = None):
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if channel_order not in ("rgb", "bgr"):
            raise ValueError(f"channel_order must be 'rgb' or 'bgr', got {channel_order!r}")
        if int(detect_every) < 1:
            raise ValueError(f"detect_every must be >= 1, got {detect_every}")
        self.workers, self.detect_every, self.track = resolve_workers(workers), int(detect_every), track
        self.backend, self.detector, self.detector_name = backend, detector, detector_name
        self._serial_detector = SerialDetector(detector)
        self.crop = dict(crop)
        self.preprocessor = Preprocessor(backend.data_config, crop)
        self.batch_size, self.logits, self.channel_order = int(batch_size), bool(logits), channel_order
        self.untrained = bool(getattr(backend, "untrained", False))
        self.precision = str(getattr(backend, "precision", "fp32"))  # what ran: fp32 / bf16 / fp16 / int8

    @property
    def label_names(self) -> tuple[str, ...]:
        return tuple(self.backend.label_names)

    @property
    def data_config(self) -> dict[str, Any]:
        return dict(self.backend.data_config)

    @property
    def model_name(self) -> str:
        return str(self.backend.model_name)

    @property
    def tracks(self) -> bool:
        """Whether :meth:`predict_video` adds ``track_id`` by default (``track``; None: ``detect_every > 1``)."""
        return bool(self.track) if self.track is not None else self.detect_every > 1

    def __repr__(self) -> str:
        return (f"Recognizer(model={self.model_name!r}, backend={self.backend.name!r}, "
                f"detector={self.detector_name!r}, crop={self.crop['preset']!r}, labels={list(self.label_names)}, "
                f"batch_size={self.batch_size}, workers={self.workers})")

    # ---- images ------------------------------------------------------------------------------------------------
    def predict(self, x: Any, *, boxes: Sequence[Any] | None = None, channel_order: str | None = None,
                logits: bool | None = None, progress: bool = False) -> Record | list[Record]:
        """Recognise the expressions of every face.

        Args:
            x: an image path, a folder, a ``PIL.Image``, a numpy array (H, W[, C]) or (N, H, W, C), or a list of these.
            boxes: for a single image only: use these faces instead of the detector (each ``(x1, y1, x2, y2)``,
                ``(x1, y1, x2, y2, score)``, a dict with ``box`` or a :class:`ferkit.detect.Face`).
            channel_order: ``"rgb"`` or ``"bgr"`` for numpy inputs (default: the recognizer's).
            logits: include raw logits per face (default: the recognizer's setting).
            progress: show a progress bar (stderr).

        Returns:
            One :class:`Record` for a single image, else a list in input order. A record's ``faces`` is ``[]`` when no
            face was found; a bad input gets ``error`` set and does not stop the others.
        """
        single = inputs.is_single(x)
        if boxes is not None and not single:
            raise ValueError("boxes= is for a single image; for several images pass a detector callable instead")
        records = list(self.predict_iter(x, boxes=boxes, channel_order=channel_order, logits=logits,
                                         progress=progress))
        return records[0] if single else records

    def predict_iter(self, x: Any, *, boxes: Sequence[Any] | None = None, channel_order: str | None = None,
                     logits: bool | None = None, progress: bool = False) -> Iterator[Record]:
        """Like :meth:`predict` but yields records as they are ready (constant memory for large folders)."""
        for frame in self.predict_frames(x, boxes=boxes, channel_order=channel_order, logits=logits,
                                         progress=progress):
            yield frame.record

    def predict_frames(self, x: Any, *, boxes: Sequence[Any] | None = None, channel_order: str | None = None,
                       logits: bool | None = None, progress: bool = False) -> Iterator[Frame]:
        """Like :meth:`predict_iter` but yields :class:`Frame` s (record + RGB pixels + detector faces), e.g. to draw
        the results; pixels of a batch are released once it has been yielded.

        With ``workers > 0`` and several inputs, the inputs are read, detected and cropped by worker threads (at most
        ``max(2 * workers, batch_size)`` ahead) while the previous batch is classified."""
        items = list(inputs.expand(x))
        workers = self.workers if len(items) > 1 else 0

        def stage(item: inputs.InputItem) -> Frame:
            frame = self.prepare(item, boxes=boxes, channel_order=channel_order)
            return self.crop_faces(frame) if workers else frame  # sequential: cropped in recognize(), as always

        bar = progress_bar(len(items), "images", progress)
        try:
            with contextlib.closing(ordered_map(stage, items, workers, ahead=max(2 * workers, self.batch_size))) as it:
                for chunk in chunks(it, self.batch_size):
                    yield from self.recognize(chunk, logits=logits)
                    bar.update(len(chunk))
        finally:
            bar.close()

    def prepare(self, item: inputs.InputItem, *, boxes: Sequence[Any] | None = None,
                channel_order: str | None = None) -> Frame:
        """Read and detect one input; failures are recorded in ``record.error``."""
        frame = Frame(Record(item.name, untrained=self.untrained))
        try:
            rgb = inputs.read_rgb(item, channel_order=channel_order or self.channel_order)
            frame.faces = [as_face(b) for b in boxes] if boxes is not None else self.detect(rgb)
            frame.rgb = rgb
        except Exception as e:  # noqa: BLE001 - one bad input must not stop the batch
            log.debug("input %s failed", item.name, exc_info=True)
            frame.record.error = error_message(e)
        return frame

    def detect(self, rgb: np.ndarray) -> list[Face]:
        """Faces in an RGB uint8 image (original pixels, best first). Safe to call from several threads: a detector
        that does not declare ``thread_safe = True`` is called by one thread at a time."""
        return self._serial_detector.detect(rgb)

    def crop_faces(self, frame: Frame) -> Frame:
        """Crop and normalise every face of ``frame`` into ``frame.crops``; a face that cannot be cropped sets the
        record's ``error`` (the other faces go on)."""
        frame.crops = []
        for j, face in enumerate(frame.faces):
            try:
                frame.crops.append((j, self.preprocessor.to_tensor(self.preprocessor.crop_face(frame.rgb, face))))
            except Exception as e:  # noqa: BLE001
                frame.record.error = f"face at {[round(v, 1) for v in face.box]}: {error_message(e)}"
        return frame

    # ---- recognition -------------------------------------------------------------------------------------------
    def recognize(self, frames: Sequence[Frame], *, logits: bool | None = None) -> Sequence[Frame]:
        """Crop every face of ``frames`` (unless a pipeline worker did), classify them in batches and fill each
        record's ``faces``."""
        crops, owners = [], []
        for i, frame in enumerate(frames):
            if frame.crops is None:
                self.crop_faces(frame)
            for j, tensor in frame.crops:
                crops.append(tensor)
                owners.append((i, j))
            frame.crops = None  # the tensors are in the batch now
        if crops:
            raw = self.classify(torch.stack(crops))
            with_logits = self.logits if logits is None else logits
            for (i, j), row in zip(owners, raw):
                frame = frames[i]
                track_id = None if frame.track_ids is None else frame.track_ids[j]
                frame.record.faces.append(self._face_result(frame.faces[j], row, with_logits, track_id))
        return frames

    def classify(self, batch: torch.Tensor) -> torch.Tensor:
        """(N, 3, S, S) normalised crops -> (N, C) float32 logits, ``batch_size`` crops per forward pass."""
        return torch.cat([self.backend.logits(part) for part in batch.split(self.batch_size)])

    def _face_result(self, face: Face, logits: torch.Tensor, with_logits: bool,
                     track_id: int | None = None) -> FaceResult:
        probs = torch.softmax(logits.double(), dim=-1).tolist()
        names = self.label_names
        top = int(np.argmax(probs))
        lm = None if face.landmarks is None else np.asarray(face.landmarks, dtype=np.float64).tolist()
        return FaceResult(box=tuple(float(v) for v in face.box), score=float(face.score), label=names[top],
                          label_score=probs[top], scores=dict(zip(names, probs)), landmarks=lm,
                          logits=dict(zip(names, logits.tolist())) if with_logits else None, track_id=track_id)

    # ---- video -------------------------------------------------------------------------------------------------
    def predict_video(self, source: Any, *, every: int = 1, max_frames: int | None = None, out: Any = None,
                      progress: bool = False, detect_every: int | None = None,
                      track: bool | None = None) -> Iterator[Record]:
        """Stream one record per processed frame of a video file or camera (:func:`ferkit.infer.video.predict_video`).

        Args:
            source: video path, or a camera index (int, or a digit string such as ``"0"``).
            every: process every N-th frame. max_frames: stop after this many processed frames.
            out: path of an annotated output video (``.mp4`` or ``.avi``), or None.
            detect_every: run the detector on every N-th processed frame and carry the tracked faces in between
                (default: the recognizer's, 1). track: give every face a ``track_id`` (default: the recognizer's;
                None = when ``detect_every > 1``).
        """
        return predict_video(self, source, every=every, max_frames=max_frames, out=out, progress=progress,
                             detect_every=self.detect_every if detect_every is None else detect_every,
                             track=self.track if track is None else track)
