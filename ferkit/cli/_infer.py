"""Arguments shared by the inference commands (``predict``, ``webcam``, ``explain``, ``serve``) and the recognizer
they build."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ferkit.cli._common import (
    BACKENDS,
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
    add_precision_arg(g, inference=True)
    g.add_argument("--backend", default=None, choices=BACKENDS,
                   help="runtime: torch (PyTorch), onnx (onnxruntime), openvino, or auto (on the CPU OpenVINO, else "
                        "onnxruntime, else PyTorch; --model is exported to ONNX once and cached). Default: torch, onnx "
                        "for an .onnx file or int8, auto with --precision auto")
    g.add_argument("--calibrate", default=None, metavar="DIR",
                   help="face images (pre-cropped) to quantize --model to int8 with (--precision int8/auto; done once, "
                        "cached)")
    g.add_argument("--calibrate-count", type=int, default=256, metavar="N",
                   help="calibration images, spread over the sorted folder (default 256; 0 = all)")
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
                backend=args.backend,
                calibrate=args.calibrate, calibrate_count=args.calibrate_count or None,
                crop=args.crop, detector_weights=args.detector_weights, score_threshold=args.score_threshold,
                trust_checkpoint=args.trust_checkpoint, allow_unverified=args.allow_unverified,
                **parse_overrides(args.overrides), **pipeline_options(args), **extra)


def pipeline_options(args: argparse.Namespace) -> dict[str, Any]:
    """``workers`` (:func:`add_workers_arg`) and ``detect_every`` / ``track`` (:func:`add_frame_args`) of
    :func:`ferkit.load`, for the commands that have these flags."""
    out: dict[str, Any] = {}
    if getattr(args, "pipeline_workers", None) is not None:
        out["workers"] = args.pipeline_workers
    if hasattr(args, "detect_every"):
        out.update(detect_every=args.detect_every, track=args.track)
    return out


def add_workers_arg(p: Any) -> None:
    """``--workers N``: pipeline threads that read, detect and crop ahead of the classifier."""
    p.add_argument("--workers", dest="pipeline_workers", type=int, default=None, metavar="N",
                   help="threads that decode, detect and crop images / video frames while the previous batch is "
                        "classified (default: 2, or 1 on a single core; 0 = one stage after the other)")


def build_recognizer(args: argparse.Namespace, **extra: Any) -> Any:
    """``ferkit.load`` with the parsed arguments (after importing the ``--plugin`` modules)."""
    from ferkit.infer import load

    import_plugins_of(args)
    return load(args.model, checkpoint=args.checkpoint, **recognizer_options(args, **extra))


def add_records_args(p: Any, *, formats: tuple[str, ...] = ("json", "jsonl", "csv")) -> None:
    """``--format`` and ``--output/-o`` of the commands that write records."""
    nested = "/".join(sorted((f for f in formats if f not in ("csv", "parquet")), reverse=True))
    flat = "/".join(f for f in ("csv", "parquet") if f in formats)
    p.add_argument("--format", default="jsonl", choices=formats,
                   help=f"{nested}: nested records; {flat}: one row per face (default: jsonl)")
    p.add_argument("--output", "-o", default="-", help="records file (default: stdout)")


def add_frame_args(p: Any) -> None:
    """``--every`` and ``--max-frames`` of the commands that read videos or cameras."""
    p.add_argument("--every", type=int, default=1, help="process every N-th video frame")
    p.add_argument("--max-frames", type=int, default=None, help="stop a video after this many processed frames")
    p.add_argument("--detect-every", type=int, default=1, metavar="N",
                   help="run the face detector on every N-th processed frame and track the faces in between (IoU "
                        "tracker; adds track_id to every face)")
    p.add_argument("--track", action="store_true", default=None,
                   help="add a track_id (the same face across frames) to every face (implied by --detect-every > 1)")


def add_progress_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bars on stderr (default: when stderr is a terminal)")


def want_progress(args: argparse.Namespace) -> bool:
    return sys.stderr.isatty() if args.progress is None else bool(args.progress)
