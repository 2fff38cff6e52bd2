"""``ferkit predict INPUT...``: expressions of every face in images, folders and videos.

One record per image (per processed frame for videos) to stdout or ``--output``; with ``--out DIR`` also annotated
images / videos and ``DIR/predictions.<format>``. Exit code 0 when every input worked, 1 when any failed.
Python: ``ferkit.infer.write_predictions(ferkit.load(...), inputs, output, ...)``.
"""

from __future__ import annotations

import argparse
import sys

from ferkit.cli._infer import (
    add_frame_args,
    add_progress_arg,
    add_recognizer_args,
    add_records_args,
    build_recognizer,
    want_progress,
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="recognise facial expressions in images, folders and videos",
                       description="Detect faces, recognise their expressions, write one record per input "
                                   '({"input", "faces": [...], "error"}). Exit code 1 if any input failed.')
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image file, folder (recursive) or video file")
    add_recognizer_args(p)
    o = p.add_argument_group("output")
    add_records_args(o)
    o.add_argument("--flat", action="store_true", help="json/jsonl with the flat CSV rows instead of nested records")
    o.add_argument("--out", default=None, metavar="DIR",
                   help="write annotated images / videos and predictions.<format> into DIR")
    o.add_argument("--logits", action="store_true", help="add raw logits to every face")
    v = p.add_argument_group("video")
    add_frame_args(v)
    add_progress_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ferkit.cli._common import check_output_dir, check_output_file
    from ferkit.infer import write_predictions

    check_output_file(args.output, "-o/--output")
    check_output_dir(args.out, "--out")
    rec = build_recognizer(args, logits=args.logits)
    summary = write_predictions(rec, args.inputs, args.output, fmt=args.format, flat=args.flat, out_dir=args.out,
                                every=args.every, max_frames=args.max_frames, progress=want_progress(args))
    if summary.failed:
        print(f"ferkit predict: {summary.failed} of {summary.records} records have errors", file=sys.stderr)
    return 1 if summary.failed else 0
