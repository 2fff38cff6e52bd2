"""``ferkit export onnx``: a model (and checkpoint) to an ONNX file with a JSON sidecar, checked against PyTorch."""

from __future__ import annotations

import argparse

from ferkit.cli._common import (
    RegistryHelp,
    add_allow_unverified_arg,
    add_checkpoint_args,
    add_set_arg,
    parse_overrides,
    pretrained_models,
    print_json,
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a model (ONNX)", description="Export a model for deployment.")
    formats = p.add_subparsers(dest="format", metavar="FORMAT", required=True)
    o = formats.add_parser("onnx", help="ONNX file + <file>.json sidecar (labels, preprocessing)",
                           description="Export images (B, 3, S, S) -> logits (B, C) with a dynamic batch axis. "
                                       "MPA-FER's class text features are folded in as constants. The export is "
                                       "compared with PyTorch on random inputs (max |logit difference| <= --atol).")
    o.add_argument("--model", required=True,
                   help=RegistryHelp("registered model (`ferkit models`) or pretrained name: {names}",
                                     names=pretrained_models))
    add_checkpoint_args(o, help="ferkit or official checkpoint")
    add_allow_unverified_arg(o)
    add_set_arg(o)
    o.add_argument("--out", required=True, help="output .onnx path")
    o.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    o.add_argument("--atol", type=float, default=1e-4, help="parity tolerance on logits (default 1e-4)")
    o.add_argument("--no-check", action="store_true", help="skip the parity check")
    q = o.add_argument_group("int8 (static quantization with onnxruntime, see docs/inference.md#precision)")
    q.add_argument("--int8", action="store_true", help="write an int8 model (QDQ), calibrated with --calibrate")
    q.add_argument("--calibrate", default=None, metavar="DIR",
                   help="folder of face images (pre-cropped faces, read through the model's own preprocessing) whose "
                        "activation ranges calibrate the quantization")
    q.add_argument("--calibrate-count", type=int, default=256, metavar="N",
                   help="calibration images, spread over the sorted folder (default 256; 0 = all)")
    o.set_defaults(func=run_onnx)


def run_onnx(args: argparse.Namespace) -> int:
    import ferkit
    from ferkit.export.onnx import export_onnx

    if not args.out.lower().endswith(".onnx"):
        raise ValueError(f"--out must end with .onnx, got {args.out}")
    if args.int8 != (args.calibrate is not None):
        raise ValueError("--int8 needs --calibrate DIR (face images), and --calibrate goes with --int8")
    model = ferkit.create_model(args.model, checkpoint=args.checkpoint, trust_checkpoint=args.trust_checkpoint,
                                allow_unverified=args.allow_unverified, **parse_overrides(args.overrides))
    if args.int8:
        from ferkit.export.quantize import export_int8

        report = export_int8(model, args.out, calibrate=args.calibrate, count=args.calibrate_count or None,
                             opset=args.opset, check=not args.no_check)
    else:
        report = export_onnx(model, args.out, opset=args.opset, check=not args.no_check, atol=args.atol)
    print_json(report)
    return 0
