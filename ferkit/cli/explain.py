"""``ferkit explain INPUT... --out DIR``: heat maps of where the model looks, over each face crop and the photo."""

from __future__ import annotations

import argparse
import sys

from ferkit.cli._infer import add_recognizer_args, build_recognizer


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("explain", help="attention / gradient maps of the model's decision, as image overlays",
                       description="POSTER++: landmark-to-image cross-attention (paper Figs. 4/13). MPA-FER: gradients "
                                   "back-propagated to the input (paper Fig. 3). Writes <name>_explain.png and "
                                   "<name>_face<i>.png (crop | map | overlay) per input.")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image file or folder")
    add_recognizer_args(p)
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--method", default="auto", choices=["auto", "attention", "gradient", "input_x_gradient", "gradcam"],
                   help="auto: attention for POSTER++, gradient otherwise")
    p.add_argument("--scale", default="last", help="attention scale: last (7x7, Fig. 13), mean, or 0/1/2")
    p.add_argument("--target", default=None, help="gradient methods: label to explain (default: the predicted one)")
    p.add_argument("--alpha", type=float, default=0.5, help="overlay opacity")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ferkit.cli._common import check_output_dir
    from ferkit.explain import explain

    check_output_dir(args.out, "--out")
    rec = build_recognizer(args)
    scale = int(args.scale) if args.scale.isdigit() else args.scale
    exps = explain(rec, list(args.inputs), method=args.method, scale=scale, target=args.target, out_dir=args.out,
                   alpha=args.alpha)
    failed = 0
    for e in exps:
        faces = ", ".join(f"{f.face.label} {f.face.label_score:.2f}" for f in e.faces) or "no face"
        status = f"error: {e.record.error}" if e.record.error else faces
        failed += e.record.error is not None
        print(f"{e.record.input}: {status}")
    if failed:
        print(f"ferkit explain: {failed} of {len(exps)} inputs failed", file=sys.stderr)
    return 1 if failed else 0
