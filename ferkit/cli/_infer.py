"""Arguments shared by the inference commands (``predict``, ``webcam``, ``explain``, ``serve``) and the recognizer
they build."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ferkit.cli._common import (
    RegistryHelp,
    add_allow_unverified_arg,
    add_checkpoint_args,
    add_detector_arg,
    add_device_arg,
    add_plugin_arg,
    add_precision_arg,
    add_set_arg,
    default_model,
    import_plugins_of,
    parse_overrides,
    pretrained_models,
)


def add_recognizer_args(p: argparse.ArgumentParser, *, detector_default: str = "yunet",
                        repeat_model: bool = False) -> None:
    """``--model``, ``--checkpoint``, ``--detector`` and the other options of :func:`ferkit.load`.

    ``repeat_model``: ``--model`` and ``--checkpoint`` may be repeated (lists; ``ferkit serve`` serves several models).
    """
    from ferkit.detect import CROP_PRESETS

    g = p.add_argument_group("model")
    g.add_argument("--model", default=None, **({"action": "append"} if repeat_model else {}),
                   help=RegistryHelp(("repeat to serve several; " if repeat_model else "")
                                     + "pretrained name (default: {default}, shipped with ferkit; also {others}: "
                                     "`ferkit models --pretrained`), registered model with --checkpoint (`ferkit "
                                     "models`), or an exported .onnx file", default=default_model,
                                     others=_other_pretrained))
    add_checkpoint_args(g, repeat=repeat_model,
                        help="ferkit or official checkpoint for --model"
                             + (" (one per --model, in the same order)" if repeat_model else ""))
    add_allow_unverified_arg(g)
    add_set_arg(g)
    add_device_arg(g)
    add_precision_arg(g)
    g.add_argument("--batch-size", type=int, default=8, help="images / faces per forward pass")
    d = p.add_argument_group("faces")
    add_detector_arg(d, default=detector_default, extra="; skip = none: each image is one pre-cropped face")
    d.add_argument("--detector-weights", default=None, help="detector weights file (default: the weights cache)")
    d.add_argument("--score-threshold", type=float, default=None, help="minimum detection score")
    d.add_argument("--crop", default="auto",
                   help=f"face crop: auto (the model's), {', '.join(CROP_PRESETS)} (see docs/inference.md)")
    add_plugin_arg(p)


def _other_pretrained() -> list[str]:
    return [n for n in pretrained_models() if n != default_model()]


def recognizer_options(args: argparse.Namespace, **extra: Any) -> dict[str, Any]:
    """The keyword arguments of :func:`ferkit.load` (all but the model and checkpoint) from the parsed arguments."""
    return dict(detector=args.detector, device=args.device, batch_size=args.batch_size, precision=args.precision,
                crop=args.crop, detector_weights=args.detector_weights, score_threshold=args.score_threshold,
                trust_checkpoint=args.trust_checkpoint, allow_unverified=args.allow_unverified,
                **parse_overrides(args.overrides), **extra)


def build_recognizer(args: argparse.Namespace, **extra: Any) -> Any:
    """``ferkit.load`` with the parsed arguments (after importing the ``--plugin`` modules)."""
    from ferkit.infer import load

    import_plugins_of(args)
    return load(args.model, checkpoint=args.checkpoint, **recognizer_options(args, **extra))


def add_records_args(p: Any, *, formats: tuple[str, ...] = ("json", "jsonl", "csv")) -> None:
    """``--format`` and ``--output/-o`` of the commands that write records."""
    nested = "/".join(sorted((f for f in formats if f != "csv"), reverse=True))
    p.add_argument("--format", default="jsonl", choices=formats,
                   help=f"{nested}: nested records; csv: one row per face (default: jsonl)")
    p.add_argument("--output", "-o", default="-", help="records file (default: stdout)")


def add_frame_args(p: Any) -> None:
    """``--every`` and ``--max-frames`` of the commands that read videos or cameras."""
    p.add_argument("--every", type=int, default=1, help="process every N-th video frame")
    p.add_argument("--max-frames", type=int, default=None, help="stop a video after this many processed frames")


def add_progress_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bars on stderr (default: when stderr is a terminal)")


def want_progress(args: argparse.Namespace) -> bool:
    return sys.stderr.isatty() if args.progress is None else bool(args.progress)
