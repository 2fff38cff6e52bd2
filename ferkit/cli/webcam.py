"""``ferkit webcam``: expressions from a camera, one record per processed frame (same code path as videos)."""

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
    p = sub.add_parser("webcam", help="recognise facial expressions from a camera",
                       description="Read a camera until interrupted (Ctrl-C) or --max-frames; write one record per "
                                   "processed frame; optionally an annotated video. Fails clearly without a camera.")
    p.add_argument("--camera", type=int, default=0, help="camera index (default 0)")
    add_recognizer_args(p)
    add_frame_args(p)
    add_records_args(p, formats=("jsonl", "csv"))
    p.add_argument("--save-video", default=None, metavar="PATH", help="annotated video (.mp4 or .avi)")
    add_progress_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ferkit.cli._common import check_output_file
    from ferkit.infer import write_records
    from ferkit.infer.video import VideoSource

    check_output_file(args.output, "-o/--output")
    check_output_file(args.save_video, "--save-video")
    try:  # check the camera before loading the model, so a missing camera fails fast
        VideoSource(args.camera).release()
    except (OSError, ValueError) as e:
        print(f"ferkit webcam: error: {e}", file=sys.stderr)
        return 1
    rec = build_recognizer(args)
    records = rec.predict_video(args.camera, every=args.every, max_frames=args.max_frames, out=args.save_video,
                                progress=want_progress(args))
    summary = write_records(records, args.output, args.format, rec.label_names, track=rec.tracks)
    if summary.first_error is not None and summary.first_error.frame == 0:
        print(f"ferkit webcam: error: {summary.first_error.error}", file=sys.stderr)
    return 1 if summary.failed else 0
