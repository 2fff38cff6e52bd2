"""Serving models given by name, as ``ferkit serve`` does: several models, limits, worker processes.

    >>> from ferkit.serve.launch import serve_models
    >>> serve_models(["poster_v2_open.ferplus", "poster_v2"], [None, "runs/a/best.pt"],   # doctest: +SKIP
    ...              load_options={"detector": "yunet", "device": "cpu"}, limits={"max_queue": 32}, port=8000)

``build_app`` gives the app without running it. Worker processes rebuild the app from a JSON copy of the arguments
(:func:`app_from_env`), so ``load_options`` must be JSON-friendly (strings, numbers, lists, dicts).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ferkit.serve import logs
from ferkit.serve.limits import ServeLimits
from ferkit.serve.runner import ENV_ARGS, run, run_workers

ModelArg = str | os.PathLike | None
#: ``limits`` of :func:`build_app` / :func:`serve_models`: a :class:`ServeLimits`, or its fields (None = default).
LimitsArg = ServeLimits | Mapping[str, Any] | None


def model_specs(models: ModelArg | Sequence[ModelArg] = None,
                checkpoints: ModelArg | Sequence[ModelArg] = None) -> list[tuple[str | None, str | None]]:
    """``(model, checkpoint)`` pairs: every model without a checkpoint, or one checkpoint per model, in order.

    Raises:
        ValueError: checkpoints that cannot be paired with the models.
    """
    models_ = _as_list(models) or [None]
    ckpts = _as_list(checkpoints)
    if not ckpts:
        return [(m, None) for m in models_]
    if len(ckpts) != len(models_):
        raise ValueError(f"give one --checkpoint per --model, in the same order (got {len(models_)} models and "
                         f"{len(ckpts)} checkpoints)")
    return list(zip(models_, ckpts))


def model_name(model: str | None, checkpoint: str | None, taken: set[str]) -> str:
    """The name clients use: the pretrained/registered name, the file name of an ONNX model, ``@checkpoint`` when
    the same model is served twice."""
    from ferkit.models.pretrained import DEFAULT_MODEL

    name = Path(model).name if model and ("/" in model or os.sep in model) else (model or DEFAULT_MODEL)
    if name in taken and checkpoint:
        name = f"{name}@{Path(checkpoint).stem}"
    i = 2
    base = name
    while name in taken:
        name, i = f"{base}#{i}", i + 1
    return name


def make_limits(limits: LimitsArg = None) -> ServeLimits:
    """A :class:`ServeLimits` as it is, or one from the environment and the given fields
    (:meth:`ServeLimits.from_env`). Raises ``ValueError`` for a bad value."""
    if isinstance(limits, ServeLimits):
        return limits
    return ServeLimits.from_env(**dict(limits or {}))


def build_app(models: ModelArg | Sequence[ModelArg] = None, checkpoints: ModelArg | Sequence[ModelArg] = None, *,
              load_options: Mapping[str, Any] | None = None, limits: LimitsArg = None, threads: int | None = None,
              eager: bool = True) -> Any:
    """The app of ``ferkit serve``.

    Args:
        models, checkpoints: as :func:`model_specs` (None: ferkit's default model). Each is loaded with
            ``ferkit.load(model, checkpoint=..., **load_options)`` and served under :func:`model_name`.
        limits: :class:`ServeLimits` or its fields. threads: ``torch.set_num_threads`` first (None: leave it).
        eager: load the models now; False: at start-up, in the background (``/readyz`` is 503 until then).
    """
    from ferkit.infer import load

    try:
        from ferkit.serve.app import create_app
        from ferkit.serve.registry import ServedModel
    except ImportError as e:
        raise ImportError("the server needs the serve extra: pip install 'ferkit[serve]'") from e
    if threads:
        import torch

        torch.set_num_threads(int(threads))
    limits = make_limits(limits)
    options = dict(load_options or {})
    served, taken = [], set()
    for model, ckpt in model_specs(models, checkpoints):
        name = model_name(model, ckpt, taken)
        taken.add(name)

        def source(model=model, ckpt=ckpt):
            return load(model, checkpoint=ckpt, **options)

        served.append(ServedModel(name, source() if eager else source,
                                  description=f"checkpoint {Path(ckpt).name}" if ckpt else ""))
    return create_app(served, limits=limits)


def serve_models(models: ModelArg | Sequence[ModelArg] = None, checkpoints: ModelArg | Sequence[ModelArg] = None, *,
                 load_options: Mapping[str, Any] | None = None, limits: LimitsArg = None, host: str = "127.0.0.1",
                 port: int = 8000, workers: int = 1, threads: int | None = None, log_format: str = "auto",
                 log_level: int | None = None, graceful_timeout: float = 30.0,
                 plugins: Sequence[str] = ()) -> None:
    """Load the models and serve them until SIGINT/SIGTERM: the whole of ``ferkit serve``.

    Args:
        models, checkpoints, load_options, limits: see :func:`build_app`.
        workers: processes, each with its own copy of the models (each is loaded once here first, so a bad model
            fails before the workers start). threads: PyTorch threads per process (default: all cores divided among
            ``workers`` when there are several).
        log_format: ``auto``, ``json`` or ``text`` (:func:`ferkit.serve.logs.configure`); log_level: default INFO
            (DEBUG when the root logger is at DEBUG).
        plugins: modules or ``.py`` files to import first, here and in every worker (e.g. a custom detector or
            model; :func:`ferkit.train.plugins.import_plugins`).

    Raises:
        ImportError: the serve extra is missing. ValueError: bad workers, limits or model/checkpoint pairs.
    """
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as e:
        raise ImportError("the server needs the serve extra: pip install 'ferkit[serve]'") from e
    if workers < 1:
        raise ValueError(f"--workers must be >= 1, got {workers}")
    limits = make_limits(limits)  # validates the limits before anything is loaded
    specs = model_specs(models, checkpoints)
    if log_level is None:
        log_level = logging.DEBUG if logging.getLogger().level <= logging.DEBUG else logging.INFO
    logs.configure(log_format, log_level)
    threads = threads or (max(1, (os.cpu_count() or 1) // workers) if workers > 1 else None)
    _import_plugins(plugins)
    models_, ckpts = [m for m, _ in specs], [c for _, c in specs]
    if workers == 1:
        app = build_app(models_, ckpts, load_options=load_options, limits=limits, threads=threads)
        if threading.current_thread() is threading.main_thread():
            # uvicorn re-raises SIGTERM once it has shut down gracefully: make that a normal exit (code 0)
            signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        run(app, host=host, port=port, log_format=None, graceful_timeout=graceful_timeout)
        return
    from ferkit.infer import load

    for model, ckpt in specs:  # fail here, once, rather than in every worker
        load(model, checkpoint=ckpt, **dict(load_options or {}))
    settings = {"models": models_, "checkpoints": ckpts, "load_options": dict(load_options or {}),
                "limits": dataclasses.asdict(limits), "threads": threads, "log_format": log_format,
                "plugins": list(plugins)}
    run_workers(settings, workers=workers, host=host, port=port, graceful_timeout=graceful_timeout,
                factory="ferkit.serve.launch:app_from_env")


def app_from_env() -> Any:
    """App factory of a worker process: the arguments of :func:`serve_models` from ``FERKIT_SERVE_ARGS``; the models
    load in the background (``/readyz`` is 503 until they are ready)."""
    settings = json.loads(os.environ[ENV_ARGS])
    logs.configure(settings.pop("log_format"))
    _import_plugins(settings.pop("plugins", ()))
    limits = ServeLimits(**settings.pop("limits"))
    return build_app(settings.pop("models"), settings.pop("checkpoints"), limits=limits, eager=False, **settings)


def _import_plugins(plugins: Sequence[str]) -> None:
    if plugins:
        from ferkit.train.plugins import import_plugins

        import_plugins(plugins)


def _as_list(value: Any) -> list:
    if value is None:
        return []
    if isinstance(value, (str, os.PathLike)):
        return [value]
    return list(value)
