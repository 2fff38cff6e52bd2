"""One image request from uploads to JSON: decode and detect (thread pool), crop, classify every face of the request
in the shared micro-batch (:class:`~ferkit.serve.batcher.MicroBatcher`), build the records
(:class:`ferkit.infer.records.Record`, as ``ferkit predict`` writes them) and optionally draw them
(:func:`ferkit.infer.draw.annotate`)."""

from __future__ import annotations

import asyncio
import base64
import io
import time
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ferkit.detect.base import Face
from ferkit.infer.frames import error_message
from ferkit.infer.records import Record
from ferkit.serve.errors import ServeError
from ferkit.serve.images import decode
from ferkit.serve.limits import ServeLimits
from ferkit.serve.registry import ServedModel
from ferkit.serve.uploads import Upload

ANNOTATION_TYPES = {"jpeg": "image/jpeg", "png": "image/png"}


@dataclass
class Item:
    """One upload on its way: its record, HTTP-like status, pixels (kept only to draw) and face crops."""

    record: Record
    status: int = 200
    error_type: str | None = None
    rgb: np.ndarray | None = None
    faces: list[Face] = field(default_factory=list)
    crops: list[torch.Tensor] = field(default_factory=list)
    annotated: dict[str, str] | None = None

    def fail(self, err: ServeError) -> None:
        self.record.error, self.status, self.error_type = err.message, err.status, err.type
        self.rgb, self.faces, self.crops = None, [], []

    def to_dict(self) -> dict[str, Any]:
        out = self.record.to_dict()
        out["status"] = self.status
        if self.annotated is not None:
            out["annotated"] = self.annotated
        return out


class ImagePipeline:
    """Recognise uploaded images with one served model.

    Args:
        model: the :class:`ServedModel` (ready). limits: server limits. pool: executor for decoding, detection and
            drawing.
    """

    def __init__(self, model: ServedModel, limits: ServeLimits, pool: Executor):
        self.model, self.limits, self.pool = model, limits, pool

    async def run(self, uploads: Sequence[Upload], *, detect: bool = True, annotate: str | None = None,
                  logits: bool = False, deadline: float | None = None) -> list[Item]:
        """Items in upload order; a failed upload has its status and error set and does not affect the others."""
        loop = asyncio.get_running_loop()
        keep = annotate is not None
        items = await asyncio.gather(*(loop.run_in_executor(self.pool, self._prepare, u, detect, keep, deadline)
                                       for u in uploads))
        crops = [c for it in items for c in it.crops]
        if crops:
            logits_all = await self.model.batcher.submit(torch.stack(crops))
            self._fill(items, logits_all, logits)
        if keep:
            await asyncio.gather(*(loop.run_in_executor(self.pool, self._draw, it, annotate, deadline)
                                   for it in items if it.rgb is not None))
        return list(items)

    def _prepare(self, upload: Upload, detect: bool, keep: bool, deadline: float | None) -> Item:
        """Decode, detect and crop (on a pool thread)."""
        rec = self.model.recognizer
        item = Item(Record(upload.name, untrained=rec.untrained))
        try:
            _check_deadline(deadline)
            rgb = decode(upload.data, upload.name, formats=self.limits.formats, max_pixels=self.limits.max_pixels)
            pre = rec.preprocessor if detect else self.model.whole_image
            h, w = rgb.shape[:2]
            faces = self.model.detect(rgb) if detect else [Face(box=(0.0, 0.0, float(w), float(h)), score=1.0)]
        except ServeError as e:
            item.fail(e)
            return item
        except Exception as e:  # noqa: BLE001 - a detector failure is this image's error, not the server's
            item.fail(ServeError(500, f"{upload.name}: face detection failed: {error_message(e)}",
                                 type="detection_failed"))
            return item
        for face in faces:
            try:
                item.crops.append(pre.to_tensor(pre.crop_face(rgb, face)))
                item.faces.append(face)
            except Exception as e:  # noqa: BLE001 - as Recognizer.recognize: the other faces still count
                item.record.error = f"face at {[round(v, 1) for v in face.box]}: {error_message(e)}"
        item.rgb = rgb if keep else None
        return item

    def _fill(self, items: Sequence[Item], logits: torch.Tensor, with_logits: bool) -> None:
        rec, start = self.model.recognizer, 0
        for it in items:
            for face, row in zip(it.faces, logits[start:start + len(it.crops)]):
                it.record.faces.append(rec._face_result(face, row, with_logits))  # the recognizer's own scoring
            start += len(it.crops)
            it.crops = []

    def _draw(self, item: Item, fmt: str, deadline: float | None) -> None:
        from PIL import Image

        from ferkit.infer.draw import annotate

        _check_deadline(deadline)
        img = Image.fromarray(annotate(item.rgb, item.record.faces, untrained=item.record.untrained))
        buf = io.BytesIO()
        img.save(buf, format="JPEG" if fmt == "jpeg" else "PNG", **({"quality": 90} if fmt == "jpeg" else {}))
        item.annotated = {"media_type": ANNOTATION_TYPES[fmt], "data": base64.b64encode(buf.getvalue()).decode()}
        item.rgb = None


def _check_deadline(deadline: float | None) -> None:
    """Skip work for a request that has already timed out (it stays queued in the pool otherwise)."""
    if deadline is not None and time.monotonic() > deadline:
        raise ServeError(503, "the request timed out before this image was processed", type="timeout")
