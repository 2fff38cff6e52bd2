"""What the recognizer and the video loop share: the :class:`Frame` on its way through the pipeline, the one-line
error message of a failed input, batching and progress bars.

Both ``recognizer.py`` and ``video.py`` import from here (and neither from the other's internals), so the video loop
needs only the small :class:`FramePipeline` interface of a recognizer.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ferkit.detect.base import Face
from ferkit.errors import FerkitError
from ferkit.infer.records import Record


@dataclass
class Frame:
    """An image on its way through the pipeline: its record, pixels (None after an error) and detected faces.

    ``crops``: ``(face index, normalised tensor)`` once the faces were cropped (by a pipeline worker; None = not yet,
    :meth:`~ferkit.infer.Recognizer.recognize` crops them then). ``track_ids``: one per face when faces are tracked
    across video frames (:mod:`ferkit.infer.tracking`), else None. ``detected``: the detector ran on this frame
    (False for a video frame whose faces are carried from the last detector frame).
    """

    record: Record
    rgb: np.ndarray | None = None
    faces: list[Face] = field(default_factory=list)
    crops: list[tuple[int, Any]] | None = None
    track_ids: list[int] | None = None
    detected: bool = True


class FramePipeline(Protocol):
    """What the video loop needs of a :class:`~ferkit.infer.Recognizer`."""

    batch_size: int
    untrained: bool
    workers: int
    detect_every: int
    track: bool | None

    def detect(self, rgb: np.ndarray) -> list[Face]: ...

    def crop_faces(self, frame: Frame) -> Frame: ...

    def recognize(self, frames: Sequence[Frame], *, logits: bool | None = None) -> Sequence[Frame]: ...


def error_message(e: BaseException) -> str:
    """A one-line message for a failed input (ferkit's own messages as they are, others prefixed by their type)."""
    msg = str(e) if isinstance(e, (FerkitError, ValueError, OSError)) and str(e) else f"{type(e).__name__}: {e}"
    return msg if len(msg) <= 500 else msg[:497] + "..."


def chunks(items: Iterable[Any], n: int) -> Iterator[list[Any]]:
    """Consecutive lists of ``n`` items (the last may be shorter)."""
    it = iter(items)
    while chunk := list(itertools.islice(it, n)):
        yield chunk


def progress_bar(total: int | None, unit: str, enabled: bool) -> Any:
    """A tqdm bar on stderr (a silent one when not ``enabled``)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, unit=f" {unit}", disable=not enabled, leave=False, dynamic_ncols=True)
