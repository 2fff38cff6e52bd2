"""``ferkit serve``: HTTP API and web page for expression recognition (a thin wrapper over ``ferkit.serve``)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

from ferkit.cli._infer import add_recognizer_args, build_recognizer

DESCRIPTION = """\
Serve one or more models over HTTP: POST /v1/predict (images), POST /v1/predict/video (JSON lines), GET /v1/models,
/healthz, /readyz, /metrics (Prometheus), /docs (OpenAPI) and a web page at / (photos and webcam). Concurrent
requests are micro-batched; a full queue answers 503 with Retry-After. Needs the serve extra:
pip install 'ferkit[serve]'. See docs/serving.md.

environment: FERKIT_SERVE_API_KEY (like --api-key), FERKIT_SERVE_CORS_ORIGINS (comma-separated, like --cors-origin).
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="HTTP API and web page for expression recognition",
                       description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_recognizer_args(p, repeat_model=True)
    s = p.add_argument_group("server")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    s.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    s.add_argument("--workers", type=int, default=1,
                   help="processes, each with its own copy of the models (default 1)")
    s.add_argument("--threads", type=int, default=None,
                   help="PyTorch threads per process (default: all cores, divided among --workers)")
    s.add_argument("--api-key", default=None,
                   help="require this X-API-Key header on /v1/* (default: $FERKIT_SERVE_API_KEY; none when unset)")
    s.add_argument("--cors-origin", action="append", default=None, metavar="ORIGIN",
                   help="allow browser pages from ORIGIN (repeatable; default: $FERKIT_SERVE_CORS_ORIGINS)")
    s.add_argument("--log-format", default="auto", choices=["auto", "json", "text"],
                   help="log lines on stderr: json (one object per line), text, auto (text on a terminal)")
    s.add_argument("--graceful-timeout", type=float, default=30.0,
                   help="on SIGTERM/Ctrl-C, seconds to let requests in flight finish (default 30)")
    lim = p.add_argument_group("limits (--batch-size is the most faces per forward pass)")
    lim.add_argument("--max-upload-mb", type=float, default=20.0, help="largest image request body (default 20)")
    lim.add_argument("--max-pixels", type=int, default=40_000_000,
                     help="largest image, width x height, checked before decoding (default 40000000)")
    lim.add_argument("--max-images", type=int, default=16, help="most images per request (default 16)")
    lim.add_argument("--formats", default="jpeg,png,webp,bmp,gif,tiff",
                     help="accepted image formats (default jpeg,png,webp,bmp,gif,tiff)")
    lim.add_argument("--request-timeout", type=float, default=30.0, help="seconds per image request (default 30)")
    lim.add_argument("--max-wait-ms", type=float, default=5.0,
                     help="how long a face waits for others to share its forward pass (default 5)")
    lim.add_argument("--max-queue", type=int, default=64,
                     help="most requests in flight per process; more get 503 + Retry-After (default 64)")
    lim.add_argument("--prep-threads", type=int, default=2, help="threads decoding and detecting (default 2)")
    lim.add_argument("--max-video-mb", type=float, default=200.0, help="largest video upload (default 200)")
    lim.add_argument("--max-video-frames", type=int, default=1800, help="most processed frames per video")
    lim.add_argument("--max-videos", type=int, default=2, help="videos processed at once per process (default 2)")
    lim.add_argument("--video-timeout", type=float, default=600.0, help="seconds per video (default 600)")
    p.set_defaults(func=run)


def model_specs(args: argparse.Namespace) -> list[tuple[str | None, str | None]]:
    """``(model, checkpoint)`` pairs from the repeated ``--model`` / ``--checkpoint`` flags.

    Raises:
        ValueError: checkpoints that cannot be paired with the models.
    """
    models = args.model or [None]
    ckpts = args.checkpoint or []
    if not ckpts:
        return [(m, None) for m in models]
    if len(ckpts) != len(models):
        raise ValueError(f"give one --checkpoint per --model, in the same order (got {len(models)} models and "
                         f"{len(ckpts)} checkpoints)")
    return list(zip(models, ckpts))


def model_name(model: str | None, checkpoint: str | None, taken: set[str]) -> str:
    """The name clients use: the pretrained/registered name, the file name of an ONNX model, ``@checkpoint`` when
    the same model is served twice."""
    from ferkit.hub.pretrained import DEFAULT_MODEL

    name = Path(model).name if model and ("/" in model or os.sep in model) else (model or DEFAULT_MODEL)
    if name in taken and checkpoint:
        name = f"{name}@{Path(checkpoint).stem}"
    i = 2
    base = name
    while name in taken:
        name, i = f"{base}#{i}", i + 1
    return name


def limits_from(args: argparse.Namespace) -> Any:
    from ferkit.serve.limits import MB, ServeLimits

    return ServeLimits.from_env(
        max_upload_bytes=int(args.max_upload_mb * MB), max_pixels=args.max_pixels, max_images=args.max_images,
        formats=tuple(f for f in args.formats.split(",") if f.strip()), request_timeout=args.request_timeout,
        max_batch=args.batch_size, max_wait_ms=args.max_wait_ms, max_queue=args.max_queue,
        prep_threads=args.prep_threads, max_video_bytes=int(args.max_video_mb * MB),
        max_video_frames=args.max_video_frames, max_videos=args.max_videos, video_timeout=args.video_timeout,
        api_key=args.api_key, cors_origins=tuple(args.cors_origin) if args.cors_origin else None)


def build_app(args: argparse.Namespace, *, eager: bool = True) -> Any:
    """The app of ``ferkit serve``: models loaded now (``eager``) or as factories at start-up (worker processes)."""
    from ferkit.serve import ServedModel, create_app

    _set_threads(args)
    limits = limits_from(args)
    served, taken = [], set()
    for model, ckpt in model_specs(args):
        name = model_name(model, ckpt, taken)
        taken.add(name)
        one = argparse.Namespace(**{**vars(args), "model": model, "checkpoint": ckpt})
        source = build_recognizer(one) if eager else (lambda one=one: build_recognizer(one))
        served.append(ServedModel(name, source, description=f"checkpoint {Path(ckpt).name}" if ckpt else ""))
    return create_app(served, limits=limits)


def _set_threads(args: argparse.Namespace) -> None:
    import torch

    threads = args.threads or (max(1, (os.cpu_count() or 1) // args.workers) if args.workers > 1 else None)
    if threads:
        torch.set_num_threads(int(threads))


def run(args: argparse.Namespace) -> int:
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        print("ferkit serve: error: the server needs the serve extra: pip install 'ferkit[serve]'", file=sys.stderr)
        return 2
    from ferkit.serve import logs
    from ferkit.serve.runner import run as serve
    from ferkit.serve.runner import run_workers

    if args.workers < 1:
        raise ValueError(f"--workers must be >= 1, got {args.workers}")
    limits_from(args)  # validates the limits before anything is loaded
    logs.configure(args.log_format, logging.DEBUG if logging.getLogger().level <= logging.DEBUG else logging.INFO)
    if args.workers == 1:
        app = build_app(args)
        # uvicorn re-raises SIGTERM once it has shut down gracefully: make that a normal exit (code 0)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        serve(app, host=args.host, port=args.port, log_format=None, graceful_timeout=args.graceful_timeout)
        return 0
    for model, ckpt in model_specs(args):  # fail here, once, rather than in every worker
        build_recognizer(argparse.Namespace(**{**vars(args), "model": model, "checkpoint": ckpt}))
    settings = {k: v for k, v in vars(args).items() if k != "func"}
    run_workers(settings, workers=args.workers, host=args.host, port=args.port,
                graceful_timeout=args.graceful_timeout)
    return 0
