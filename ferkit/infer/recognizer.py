"""``Recognizer``: images in, one :class:`~ferkit.infer.records.Record` per image out (faces, boxes, expressions).

Pipeline per batch of ``batch_size`` images: read (errors become the record's ``error``), detect faces, crop each face
like the model's training images, run the classifier on all faces of the batch at once (in chunks of ``batch_size``
faces), softmax in float64 so that the probabilities sum to 1.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

from ferkit.detect.base import Face
from ferkit.infer import inputs
from ferkit.infer.detection import as_face
from ferkit.infer.frames import Frame, chunks, error_message, progress_bar
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
    """

    def __init__(self, backend: Any, detector: Any, *, detector_name: str, crop: dict[str, Any], batch_size: int = 8,
                 logits: bool = False, channel_order: str = "rgb"):
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if channel_order not in ("rgb", "bgr"):
            raise ValueError(f"channel_order must be 'rgb' or 'bgr', got {channel_order!r}")
        self.backend, self.detector, self.detector_name = backend, detector, detector_name
        self.crop = dict(crop)
        self.preprocessor = Preprocessor(backend.data_config, crop)
        self.batch_size, self.logits, self.channel_order = int(batch_size), bool(logits), channel_order
        self.untrained = bool(getattr(backend, "untrained", False))

    @property
    def label_names(self) -> tuple[str, ...]:
        return tuple(self.backend.label_names)

    @property
    def data_config(self) -> dict[str, Any]:
        return dict(self.backend.data_config)

    @property
    def model_name(self) -> str:
        return str(self.backend.model_name)

    def __repr__(self) -> str:
        return (f"Recognizer(model={self.model_name!r}, backend={self.backend.name!r}, "
                f"detector={self.detector_name!r}, crop={self.crop['preset']!r}, labels={list(self.label_names)}, "
                f"batch_size={self.batch_size})")

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
        the results; pixels of a batch are released once it has been yielded."""
        items = list(inputs.expand(x))
        bar = progress_bar(len(items), "images", progress)
        try:
            for chunk in chunks(items, self.batch_size):
                frames = [self.prepare(item, boxes=boxes, channel_order=channel_order) for item in chunk]
                yield from self.recognize(frames, logits=logits)
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
        """Faces in an RGB uint8 image (original pixels, best first)."""
        return list(self.detector.detect(rgb))

    # ---- recognition -------------------------------------------------------------------------------------------
    def recognize(self, frames: Sequence[Frame], *, logits: bool | None = None) -> Sequence[Frame]:
        """Crop every face of ``frames``, classify them in batches and fill each record's ``faces``."""
        crops, owners = [], []
        for i, frame in enumerate(frames):
            for face in frame.faces:
                try:
                    crops.append(self.preprocessor.to_tensor(self.preprocessor.crop_face(frame.rgb, face)))
                    owners.append((i, face))
                except Exception as e:  # noqa: BLE001
                    frame.record.error = f"face at {[round(v, 1) for v in face.box]}: {error_message(e)}"
        if crops:
            raw = self.classify(torch.stack(crops))
            with_logits = self.logits if logits is None else logits
            for (i, face), row in zip(owners, raw):
                frames[i].record.faces.append(self._face_result(face, row, with_logits))
        return frames

    def classify(self, batch: torch.Tensor) -> torch.Tensor:
        """(N, 3, S, S) normalised crops -> (N, C) float32 logits, ``batch_size`` crops per forward pass."""
        return torch.cat([self.backend.logits(part) for part in batch.split(self.batch_size)])

    def _face_result(self, face: Face, logits: torch.Tensor, with_logits: bool) -> FaceResult:
        probs = torch.softmax(logits.double(), dim=-1).tolist()
        names = self.label_names
        top = int(np.argmax(probs))
        lm = None if face.landmarks is None else np.asarray(face.landmarks, dtype=np.float64).tolist()
        return FaceResult(box=tuple(float(v) for v in face.box), score=float(face.score), label=names[top],
                          label_score=probs[top], scores=dict(zip(names, probs)), landmarks=lm,
                          logits=dict(zip(names, logits.tolist())) if with_logits else None)

    # ---- video -------------------------------------------------------------------------------------------------
    def predict_video(self, source: Any, *, every: int = 1, max_frames: int | None = None, out: Any = None,
                      progress: bool = False) -> Iterator[Record]:
        """Stream one record per processed frame of a video file or camera (:func:`ferkit.infer.video.predict_video`).

        Args:
            source: video path, or a camera index (int, or a digit string such as ``"0"``).
            every: process every N-th frame. max_frames: stop after this many processed frames.
            out: path of an annotated output video (``.mp4`` or ``.avi``), or None.
        """
        return predict_video(self, source, every=every, max_frames=max_frames, out=out, progress=progress)
