"""``ferkit predict INPUT...``: expressions of every face in images, folders and videos.

One record per image (per processed frame for videos) to stdout or ``--output``; with ``--out DIR`` also annotated
images / videos and ``DIR/predictions.<format>``. Exit code 0 when every input worked, 1 when any failed.
Corpus scale: ``--from-list``, ``--resume``, ``--shard`` (or ``torchrun``) and ``--merge`` (docs/inference.md).
Python: ``ferkit.infer.write_predictions(ferkit.load(...), inputs, output, ...)``, ``ferkit.infer.merge_shards``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ferkit.cli._infer import (
    add_frame_args,
    add_progress_arg,
    add_recognizer_args,
    add_records_args,
    add_workers_arg,
    build_recognizer,
    want_progress,
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="recognise facial expressions in images, folders and videos",
                       description="Detect faces, recognise their expressions, write one record per input "
                                   '({"input", "faces": [...], "error"}). Exit code 1 if any input failed.')
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="image file, folder (recursive) or video file")
    p.add_argument("--from-list", default=None, metavar="FILE",
                   help="also the input paths listed in FILE, one per line (after the INPUT arguments)")
    add_recognizer_args(p)
    add_workers_arg(p)
    o = p.add_argument_group("output")
    add_records_args(o, formats=("json", "jsonl", "csv", "parquet"))
    o.add_argument("--flat", action="store_true", help="json/jsonl with the flat CSV rows instead of nested records")
    o.add_argument("--out", default=None, metavar="DIR",
                   help="write annotated images / videos and predictions.<format> into DIR")
    o.add_argument("--logits", action="store_true", help="add raw logits to every face")
    c = p.add_argument_group("corpus scale (jsonl, csv or parquet output file)")
    c.add_argument("--resume", action="store_true",
                   help="continue an interrupted run into the same -o FILE (same options): keep its records, skip "
                        "the inputs they cover, append the rest")
    c.add_argument("--overwrite", action="store_true",
                   help="start again over an output that holds an interrupted run (refused without it)")
    c.add_argument("--shard", default=None, metavar="RANK/WORLD",
                   help="process input items i with i %% WORLD == RANK into OUT.rankRANK-of-WORLD.EXT (default: "
                        "RANK / WORLD_SIZE of torchrun, whose rank 0 merges the shards at the end)")
    c.add_argument("--merge", default=None, metavar="OUTPUT",
                   help="only merge the finished shard files of OUTPUT (OUTPUT.rank*-of-*) into OUTPUT")
    c.add_argument("--keep-shards", action="store_true", help="--merge: keep the shard files")
    v = p.add_argument_group("video")
    add_frame_args(v)
    add_progress_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ferkit.cli._common import check_output_dir, check_output_file
    from ferkit.infer import merge_shards, write_predictions

    if args.merge is not None:
        if args.inputs or args.from_list:
            raise ValueError("--merge takes no INPUT: it only joins the shard files of its OUTPUT")
        summary = merge_shards(args.merge, keep=args.keep_shards)
        print(f"ferkit predict: merged {summary.records} records into {summary.merged}", file=sys.stderr)
        return 1 if summary.failed else 0
    if not args.inputs and args.from_list is None:
        raise ValueError("give at least one INPUT (or --from-list FILE)")
    check_output_file(args.output, "-o/--output")
    check_output_dir(args.out, "--out")
    rec = build_recognizer(args, logits=args.logits)
    options = {"detector_weights": args.detector_weights, "score_threshold": args.score_threshold,
               "set": list(args.overrides)}
    summary = write_predictions(rec, args.inputs, args.output, fmt=args.format, flat=args.flat, out_dir=args.out,
                                every=args.every, max_frames=args.max_frames, progress=want_progress(args),
                                from_list=args.from_list, resume=args.resume, overwrite=args.overwrite,
                                shard=args.shard if args.shard is not None else "env", options=options)
    if summary.resumed:
        print(f"ferkit predict: {summary.path} already held {summary.resumed} records; appended "
              f"{summary.records - summary.resumed}", file=sys.stderr)
    under_torchrun = args.shard is None and bool(os.environ.get("MASTER_ADDR"))  # rank 0 merges
    if summary.path is not None and summary.path != Path(args.output) and not under_torchrun:
        print(f"ferkit predict: wrote shard {summary.path}; once every shard has finished: "
              f"`ferkit predict --merge {args.output}`", file=sys.stderr)
    if summary.merged is not None and summary.path != summary.merged:
        print(f"ferkit predict: merged the shards into {summary.merged}", file=sys.stderr)
    if summary.failed:
        print(f"ferkit predict: {summary.failed} of {summary.records} records have errors", file=sys.stderr)
    return 1 if summary.failed else 0

