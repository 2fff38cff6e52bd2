"""``ferkit predict INPUT...``: expressions of every face in images, folders and videos.

One record per image (per processed frame for videos) to stdout or ``--output``; with ``--out DIR`` also annotated
images / videos and ``DIR/predictions.<format>``. Exit code 0 when every input worked, 1 when any failed.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

from ferkit.cli._infer import add_progress_arg, add_recognizer_args, build_recognizer, want_progress

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="recognise facial expressions in images, folders and videos",
                       description="Detect faces, recognise their expressions, write one record per input "
                                   '({"input", "faces": [...], "error"}). Exit code 1 if any input failed.')
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image file, folder (recursive) or video file")
    add_recognizer_args(p)
    o = p.add_argument_group("output")
    o.add_argument("--format", default="jsonl", choices=["json", "jsonl", "csv"],
                   help="jsonl/json: nested records; csv: one row per face (default: jsonl)")
    o.add_argument("--flat", action="store_true", help="json/jsonl with the flat CSV rows instead of nested records")
    o.add_argument("--output", "-o", default="-", help="records file (default: stdout)")
    o.add_argument("--out", default=None, metavar="DIR",
                   help="write annotated images / videos and predictions.<format> into DIR")
    o.add_argument("--logits", action="store_true", help="add raw logits to every face")
    v = p.add_argument_group("video")
    v.add_argument("--every", type=int, default=1, help="process every N-th video frame")
    v.add_argument("--max-frames", type=int, default=None, help="stop a video after this many processed frames")
    add_progress_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ferkit.cli._common import check_output_dir, check_output_file
    from ferkit.infer.writers import RecordWriter

    check_output_file(args.output, "-o/--output")
    check_output_dir(args.out, "--out")
    rec = build_recognizer(args, logits=args.logits)
    out = Path(args.out) if args.out else None
    writers = [RecordWriter(args.output, args.format, rec.label_names, logits=args.logits, flat=args.flat)]
    if out is not None:
        writers.append(RecordWriter(out / f"predictions.{args.format}", args.format, rec.label_names,
                                    logits=args.logits, flat=args.flat))
    failed = total = 0
    try:
        for record in _records(rec, args, out):
            total += 1
            failed += record.error is not None
            for w in writers:
                w.write(record)
    finally:
        for w in writers:
            w.close()
    if failed:
        print(f"ferkit predict: {failed} of {total} records have errors", file=sys.stderr)
    return 1 if failed else 0


def _records(rec, args: argparse.Namespace, out: Path | None) -> Iterator:
    """Records in argument order: images (batched across consecutive image arguments), then each video."""
    names = _OutputNames()
    for kind, group in _groups(args.inputs):
        if kind == "video":
            target = names.video(group[0], out) if out is not None else None
            yield from rec.predict_video(group[0], every=args.every, max_frames=args.max_frames, out=target,
                                         progress=want_progress(args))
            continue
        for frame in rec.predict_frames([p for p, _ in group], progress=want_progress(args)):
            if out is not None and frame.rgb is not None:
                _save_annotated(frame, names.image(dict(group)[frame.record.input], out, frame.record.input))
            yield frame.record


def _groups(inputs: list[str]) -> Iterator[tuple[str, list]]:
    """("images", [(path, relative name), ...]) runs and ("video", [path]) items, folders expanded."""
    from ferkit.infer.inputs import is_video_file, list_images, list_videos

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
            yield "video", [arg]
        else:
            images.append((str(path), path.name))
    yield from _flush(images)


def _flush(images: list) -> Iterator[tuple[str, list]]:
    if images:
        yield "images", list(images)


class _OutputNames:
    """Unique annotated-file names inside ``--out`` (``name.jpg``, ``name_1.jpg``, ...)."""

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


def _save_annotated(frame, path: Path) -> None:
    from PIL import Image

    from ferkit.checkpoint import atomic_write_bytes
    from ferkit.infer.draw import annotate

    img = Image.fromarray(annotate(frame.rgb, frame.record.faces, untrained=frame.record.untrained))
    fmt = "JPEG" if path.suffix in (".jpg", ".jpeg") else "PNG"
    atomic_write_bytes(path, lambda f: img.save(f, format=fmt, quality=92) if fmt == "JPEG" else img.save(f, fmt))
