"""``ferkit info MODEL``: parameter counts and MACs."""

from __future__ import annotations

import argparse

from ferkit.cli._common import add_model_args, parse_overrides, print_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="parameters and MACs of a model",
                       description="Parameter counts (total, trainable, effective = affecting the output, thop-style) "
                                   "and MACs (real count and thop-style, as papers report them) for one input.")
    p.add_argument("model", help="registered model name (see `ferkit models`), or 'all'")
    add_model_args(p)
    p.add_argument("--input-size", type=int, default=None, help="input side (default: the model's, 224)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import ferkit
    from ferkit.models.info import describe_model

    names = ferkit.list_models() if args.model == "all" else [args.model]
    rows = [describe_model(name, input_size=args.input_size, num_classes=args.num_classes, checkpoint=args.checkpoint,
                           trust_checkpoint=args.trust_checkpoint, **parse_overrides(args.overrides))
            for name in names]
    if args.json:
        print_json(rows if args.model == "all" else rows[0])
        return 0
    cols = ["params_total", "params_trainable", "params_effective", "params_thop", "macs", "macs_thop"]
    w = max(len("model"), *(len(r["model"]) for r in rows))
    print(f"{'model':{w}s}" + "".join(f"{c:>18s}" for c in cols))
    for r in rows:
        print(f"{r['model']:{w}s}" + "".join(f"{r[c]:>18,d}" for c in cols))
    return 0
