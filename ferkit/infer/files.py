"""Image files, folders and video files given by path, processed in argument order (``ferkit predict``).

    >>> import ferkit
    >>> from ferkit.infer import predict_paths, write_predictions
    >>> rec = ferkit.load()
    >>> for record in predict_paths(rec, ["photos/", "clip.mp4"], out_dir="results/"):   # + annotated copies
    ...     print(record.input, [f.label for f in record.faces])
    >>> summary = write_predictions(rec, ["photos/"], "predictions.csv", fmt="csv")        # what the CLI does
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ferkit.infer.frames import Frame
from ferkit.infer.inputs import is_video_file, list_images, list_videos
from ferkit.infer.records import Record
from ferkit.infer.writers import WriteSummary, write_records

PathArg = str | os.PathLike


def predict_paths(recognizer: Any, inputs: PathArg | Sequence[PathArg], *, out_dir: PathArg | None = None,
                  every: int = 1, max_frames: int | None = None, progress: bool = False) -> Iterator[Record]:
    """Records for image files, folders and video files, in argument order.

    Images (also across consecutive image arguments and folders) are recognised in batches of the recognizer's
    ``batch_size``; a folder contributes its images (recursively, sorted) and then its videos; a video (by extension,
    :data:`ferkit.infer.inputs.VIDEO_EXTENSIONS`) yields one record per processed frame. Bad inputs become records
    with ``error`` set and do not stop the others.

    Args:
        recognizer: a :class:`~ferkit.infer.Recognizer` (:func:`ferkit.load`).
        inputs: one path or several.
        out_dir: also write annotated images (folder structure kept, names made unique, never over an input) and
            videos (``<name>_annotated.mp4|avi``) into this folder.
        every, max_frames: videos: process every N-th frame; stop a video after this many processed frames.
        progress: progress bars on stderr.
    """
    paths = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    out = Path(out_dir) if out_dir is not None else None
    names = _OutputNames()
    for kind, group in _groups(paths):
        if kind == "video":
            target = names.video(group[0], out) if out is not None else None
            yield from recognizer.predict_video(group[0], every=every, max_frames=max_frames, out=target,
                                                progress=progress)
            continue
        shown = dict(group)
        for frame in recognizer.predict_frames([p for p, _ in group], progress=progress):
            if out is not None and frame.rgb is not None:
                _save_annotated(frame, names.image(shown[frame.record.input], out, frame.record.input))
            yield frame.record


def write_predictions(recognizer: Any, inputs: PathArg | Sequence[PathArg], output: Any = "-", *,
                      fmt: str = "jsonl", flat: bool = False, out_dir: PathArg | None = None, every: int = 1,
                      max_frames: int | None = None, progress: bool = False) -> WriteSummary:
    """:func:`predict_paths` written to a records file: the whole of ``ferkit predict``.

    Args:
        output: records file, an open text stream, or ``"-"`` for stdout. fmt: ``jsonl``, ``json`` or ``csv``
            (:class:`~ferkit.infer.writers.RecordWriter`); ``flat``: JSON/JSONL with the flat CSV rows.
        out_dir: also annotated images / videos and ``<out_dir>/predictions.<fmt>`` (see :func:`predict_paths`).
        Logit columns are written when the recognizer was loaded with ``logits=True``.

    Returns:
        How many records were written and how many have an error.
    """
    outputs = [output] + ([Path(out_dir) / f"predictions.{fmt}"] if out_dir is not None else [])
    records = predict_paths(recognizer, inputs, out_dir=out_dir, every=every, max_frames=max_frames,
                            progress=progress)
    return write_records(records, outputs, fmt, recognizer.label_names, logits=recognizer.logits, flat=flat)


def _groups(inputs: list[PathArg]) -> Iterator[tuple[str, list]]:
    """("images", [(path, relative name), ...]) runs and ("video", [path]) items, folders expanded."""
    images: list[tuple[str, str]] = []
    for arg in inputs:
        path = Path(arg)
        if path.is_dir():
            files = list_images(path)
            images += [(str(f), str(Path(path.name) / f.relative_to(path))) for f in files]
            videos = list_videos(path)
            if not files and not videos:
                images.append((str(path), path.name))  # becomes an error record ("no image files in folder")
            if videos:
                yield from _flush(images)
                images = []
                yield from (("video", [str(v)]) for v in videos)
        elif is_video_file(arg):
            yield from _flush(images)
            images = []
            yield "video", [str(arg)]
        else:
            images.append((str(path), path.name))
    yield from _flush(images)


def _flush(images: list) -> Iterator[tuple[str, list]]:
    if images:
        yield "images", list(images)


class _OutputNames:
    """Unique annotated-file names inside ``out_dir`` (``name.jpg``, ``name_1.jpg``, ...)."""

    def __init__(self):
        self.used: set[str] = set()

    def _unique(self, rel: Path) -> Path:
        cand, i = rel, 0
        while str(cand) in self.used:
            i += 1
            cand = rel.with_name(f"{rel.stem}_{i}{rel.suffix}")
        self.used.add(str(cand))
        return cand

    def image(self, rel: str, out: Path, source: str | None = None) -> Path:
        """Annotated-image path for input ``source`` (shown as ``rel``); never the input file itself."""
        rel_p = Path(rel)
        suffix = rel_p.suffix.lower() if rel_p.suffix.lower() in (".jpg", ".jpeg", ".png") else ".png"
        rel_p = rel_p.with_suffix(suffix)
        if source and (out / rel_p).resolve() == Path(source).resolve():
            rel_p = rel_p.with_name(f"{rel_p.stem}_annotated{suffix}")
        return out / self._unique(rel_p)

    def video(self, path: str, out: Path) -> Path:
        suffix = ".avi" if Path(path).suffix.lower() == ".avi" else ".mp4"
        return out / self._unique(Path(Path(path).stem + "_annotated" + suffix))


def _save_annotated(frame: Frame, path: Path) -> None:
    from PIL import Image

    from ferkit.checkpoint import atomic_write_bytes
    from ferkit.infer.draw import annotate

    img = Image.fromarray(annotate(frame.rgb, frame.record.faces, untrained=frame.record.untrained))
    fmt = "JPEG" if path.suffix in (".jpg", ".jpeg") else "PNG"
    atomic_write_bytes(path, lambda f: img.save(f, format=fmt, quality=92) if fmt == "JPEG" else img.save(f, fmt))
