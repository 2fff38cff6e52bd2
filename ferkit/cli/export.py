"""``ferkit export onnx``: a model (and checkpoint) to an ONNX file with a JSON sidecar, checked against PyTorch."""

from __future__ import annotations

import argparse

from ferkit.cli._common import parse_overrides, print_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a model (ONNX)", description="Export a model for deployment.")
    formats = p.add_subparsers(dest="format", metavar="FORMAT", required=True)
    o = formats.add_parser("onnx", help="ONNX file + <file>.json sidecar (labels, preprocessing)",
                           description="Export images (B, 3, S, S) -> logits (B, C) with a dynamic batch axis. "
                                       "MPA-FER's class text features are folded in as constants. The export is "
                                       "compared with PyTorch on random inputs (max |logit difference| <= --atol).")
    o.add_argument("--model", required=True, help="registered model or pretrained name (arch.tag)")
    o.add_argument("--checkpoint", default=None, help="ferkit or official checkpoint")
    o.add_argument("--trust-checkpoint", action="store_true", help="allow unpickling a legacy checkpoint")
    o.add_argument("--allow-unverified", action="store_true",
                   help="let a pretrained --model download weights that have no published SHA-256")
    o.add_argument("--set", dest="overrides", action="append", metavar="KEY=VALUE", default=[],
                   help="model option, repeatable (e.g. --set clip_weights=ViT-B-16.pt)")
    o.add_argument("--out", required=True, help="output .onnx path")
    o.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    o.add_argument("--atol", type=float, default=1e-4, help="parity tolerance on logits (default 1e-4)")
    o.add_argument("--no-check", action="store_true", help="skip the parity check")
    o.set_defaults(func=run_onnx)


def run_onnx(args: argparse.Namespace) -> int:
    import ferkit
    from ferkit.export.onnx import export_onnx

    if not args.out.lower().endswith(".onnx"):
        raise ValueError(f"--out must end with .onnx, got {args.out}")
    model = ferkit.create_model(args.model, checkpoint=args.checkpoint, trust_checkpoint=args.trust_checkpoint,
                                allow_unverified=args.allow_unverified, **parse_overrides(args.overrides))
    report = export_onnx(model, args.out, opset=args.opset, check=not args.no_check, atol=args.atol)
    print_json(report)
    return 0
