"""``ferkit bench``: classifier speed and agreement per model, precision, batch and thread count, as one table.

Python: ``ferkit.infer.bench.bench(models, precisions, batches, threads, repeats, official_src)`` and
``format_table(rows, system_info())``.
"""

from __future__ import annotations

import argparse
import json
import sys

from ferkit.cli._common import (
    RegistryHelp,
    add_allow_unverified_arg,
    add_checkpoint_args,
    add_device_arg,
    add_plugin_arg,
    add_set_arg,
    default_model,
    import_plugins_of,
    parse_overrides,
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="time models per precision / batch / threads, with agreement vs fp32",
                       description="Time the classifier's forward pass per model, precision, batch size and thread "
                                   "count, and compare its probabilities with the same model in fp32 on the same "
                                   "inputs. Prints the CPU flags, torch threads and peak RSS with the table. "
                                   "Numbers are medians; compare them only within one run on an idle machine.")
    p.add_argument("--model", dest="models", action="append", default=None, metavar="MODEL",
                   help=RegistryHelp("repeatable: pretrained name (default: {default}), registered name (random "
                                     "seeded weights unless --checkpoint) or a .onnx file", default=default_model))
    p.add_argument("--precision", dest="precisions", nargs="+", default=["fp32"], metavar="P",
                   help="precisions as ferkit.load accepts them, e.g. fp32 bf16 auto int8 (default: fp32); a refused "
                        "one gives an error row")
    p.add_argument("--backend", dest="backends", nargs="+", default=[None], metavar="B",
                   help="runtimes as ferkit.load accepts them: torch onnx openvino auto (default: ferkit.load's "
                        "default: torch, onnx for int8 and .onnx files); each precision is timed with each")
    p.add_argument("--batch", dest="batches", type=int, nargs="+", default=[1, 8], metavar="N",
                   help="faces per forward pass (default: 1 8)")
    p.add_argument("--threads", type=int, nargs="+", default=None, metavar="N",
                   help="torch intra-op thread counts (default: torch's current setting)")
    p.add_argument("--repeats", type=int, default=5, help="timed calls per row, median reported (default: 5)")
    p.add_argument("--warmup", type=int, default=1, help="untimed calls before each row (default: 1)")
    p.add_argument("--images", default=None, metavar="DIR",
                   help="face crops to use as inputs (through each model's preprocessing) instead of random tensors")
    p.add_argument("--calibrate", default=None, metavar="DIR",
                   help="face images to calibrate the int8 quantization of a PyTorch model (--precision int8)")
    p.add_argument("--official-src", default=None, metavar="PATH",
                   help="your checkout of github.com/Talented-Q/POSTER_V2: time the official code with the same "
                        "weights as ferkit's poster_v2 in the same process (poster_v2 is added when not listed)")
    add_checkpoint_args(p, help="weights for the registered (untagged) --model names")
    add_allow_unverified_arg(p)
    add_set_arg(p, help="model option, repeatable; MODEL:KEY=VALUE for one model only "
                        "(e.g. --set mpa_fer_vit_b16:clip_weights=random)")
    add_device_arg(p, default="cpu")
    p.add_argument("--json", dest="json_out", default=None, metavar="FILE", help="also write the rows as JSON")
    add_plugin_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ferkit.cli._common import check_output_file
    from ferkit.infer.bench import (
        bench,
        format_header,
        format_peak,
        format_row,
        peak_rss_mb,
        system_info,
        table_head,
    )

    check_output_file(args.json_out, "--json")
    import_plugins_of(args)
    import torch

    saved = torch.get_num_threads()
    if args.threads:
        torch.set_num_threads(args.threads[0])  # the header shows the first setting
    try:
        info = system_info()
        print(format_header(info) + "\n\n" + table_head(), flush=True)
        rows = bench(args.models, args.precisions, args.batches, args.threads, args.repeats, args.official_src,
                     images=args.images, checkpoint=args.checkpoint, overrides=parse_overrides(args.overrides),
                     device=args.device, warmup=args.warmup, backends=args.backends,
                     trust_checkpoint=args.trust_checkpoint, allow_unverified=args.allow_unverified,
                     calibrate=args.calibrate,
                     on_row=lambda r: print(format_row(r), flush=True))
    finally:
        torch.set_num_threads(saved)
    info["peak_rss_mb"] = peak_rss_mb()
    if format_peak(rows):
        print("\n" + format_peak(rows))
    print(f"\npeak RSS: {info['peak_rss_mb']:.0f} MiB")
    if args.json_out:
        with open(args.json_out, "w", encoding="utf-8") as f:
            json.dump({"system": info, "rows": rows}, f, indent=2)
    failed = sum(r["error"] is not None for r in rows)
    if failed:
        print(f"ferkit bench: {failed} of {len(rows)} rows have errors", file=sys.stderr)
    return 1 if failed == len(rows) else 0
