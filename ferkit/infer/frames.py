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
    """An image on its way through the pipeline: its record, pixels (None after an error) and detected faces."""

    record: Record
    rgb: np.ndarray | None = None
    faces: list[Face] = field(default_factory=list)


class FramePipeline(Protocol):
    """What the video loop needs of a :class:`~ferkit.infer.Recognizer`."""

    batch_size: int
    untrained: bool

    def detect(self, rgb: np.ndarray) -> list[Face]: ...

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
