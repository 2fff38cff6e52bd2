"""Arguments shared by the inference commands (``predict``, ``webcam``, ``explain``) and the recognizer they build."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ferkit.cli._common import parse_overrides


def add_recognizer_args(p: argparse.ArgumentParser, *, detector_default: str = "yunet",
                        repeat_model: bool = False) -> None:
    """``--model``, ``--checkpoint``, ``--detector`` and the other options of :func:`ferkit.load`.

    ``repeat_model``: ``--model`` and ``--checkpoint`` may be repeated (lists; ``ferkit serve`` serves several models).
    """
    from ferkit.hub.pretrained import DEFAULT_MODEL

    many = {"action": "append"} if repeat_model else {}
    g = p.add_argument_group("model")
    g.add_argument("--model", default=None,
                   help=f"pretrained name (default: {DEFAULT_MODEL}, shipped with ferkit; `ferkit models --pretrained` "
                        "lists the others), registered model with --checkpoint, or an exported .onnx file"
                        + ("; repeat to serve several" if repeat_model else ""), **many)
    g.add_argument("--checkpoint", default=None, **many,
                   help="ferkit or official checkpoint for --model" + (" (one per --model, in the same order)"
                                                                       if repeat_model else ""))
    g.add_argument("--trust-checkpoint", action="store_true",
                   help="allow unpickling a legacy checkpoint (only for files you trust)")
    g.add_argument("--allow-unverified", action="store_true",
                   help="let a pretrained --model download weights that have no published SHA-256 (their hash is "
                        "recorded)")
    g.add_argument("--set", dest="overrides", action="append", metavar="KEY=VALUE", default=[],
                   help="model option, repeatable (e.g. --set clip_weights=ViT-B-16.pt)")
    g.add_argument("--device", default="auto", help="auto (cuda > mps > cpu), cpu, cuda, cuda:N, mps")
    g.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"], help="autocast precision")
    g.add_argument("--batch-size", type=int, default=8, help="images / faces per forward pass")
    d = p.add_argument_group("faces")
    d.add_argument("--detector", default=detector_default,
                   help="yunet (default, shipped), retinaface, mtcnn, haar, or none (alias skip: each image is one "
                        "pre-cropped face)")
    d.add_argument("--detector-weights", default=None, help="detector weights file (default: the weights cache)")
    d.add_argument("--score-threshold", type=float, default=None, help="minimum detection score")
    d.add_argument("--crop", default="auto",
                   help="face crop: auto (the model's), square, rafdb_aligned, affectnet, fer2013, none "
                        "(see docs/inference.md)")


def build_recognizer(args: argparse.Namespace, **extra: Any) -> Any:
    """``ferkit.load`` with the parsed arguments."""
    import ferkit

    return ferkit.load(args.model, checkpoint=args.checkpoint, detector=args.detector, device=args.device,
                       batch_size=args.batch_size, precision=args.precision, crop=args.crop,
                       detector_weights=args.detector_weights, score_threshold=args.score_threshold,
                       trust_checkpoint=args.trust_checkpoint, allow_unverified=args.allow_unverified,
                       **parse_overrides(args.overrides), **extra)


def add_progress_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bars on stderr (default: when stderr is a terminal)")


def want_progress(args: argparse.Namespace) -> bool:
    return sys.stderr.isatty() if args.progress is None else bool(args.progress)
