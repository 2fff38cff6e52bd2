"""``ferkit serve``: HTTP API and web page for expression recognition (a thin wrapper over
:func:`ferkit.serve.launch.serve_models`)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ferkit.cli._infer import add_recognizer_args, recognizer_options

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


def limit_options(args: argparse.Namespace) -> dict[str, Any]:
    """The :class:`ferkit.serve.ServeLimits` fields the flags set (None: from the environment, else the default)."""
    from ferkit.serve.limits import MB

    return dict(max_upload_bytes=int(args.max_upload_mb * MB), max_pixels=args.max_pixels, max_images=args.max_images,
                formats=tuple(f for f in args.formats.split(",") if f.strip()), request_timeout=args.request_timeout,
                max_batch=args.batch_size, max_wait_ms=args.max_wait_ms, max_queue=args.max_queue,
                prep_threads=args.prep_threads, max_video_bytes=int(args.max_video_mb * MB),
                max_video_frames=args.max_video_frames, max_videos=args.max_videos, video_timeout=args.video_timeout,
                api_key=args.api_key, cors_origins=tuple(args.cors_origin) if args.cors_origin else None)


def run(args: argparse.Namespace) -> int:
    from ferkit.serve.launch import serve_models

    try:
        serve_models(args.model, args.checkpoint, load_options=recognizer_options(args), limits=limit_options(args),
                     host=args.host, port=args.port, workers=args.workers, threads=args.threads,
                     log_format=args.log_format, graceful_timeout=args.graceful_timeout, plugins=args.plugins)
    except ImportError as e:  # the serve extra (or a detector's library) is missing
        print(f"ferkit serve: error: {e}", file=sys.stderr)
        return 2
    return 0
