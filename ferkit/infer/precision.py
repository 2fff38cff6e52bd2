"""``ferkit.load(precision=..., backend=...)``: what each precision means for a PyTorch model and for an exported ONNX
file, the ``auto`` choices (precision: :func:`ferkit.device.choose_precision`; runtime: :func:`choose_backend`), and the
ONNX files made on the fly for the ONNX / OpenVINO runtimes (fp32 exports, int8 from calibration images).

- PyTorch model: ``fp32`` / ``bf16`` / ``fp16`` are autocast precisions; ``int8`` needs calibration images
  (``calibrate=DIR``): the model is exported and quantized once (:func:`ferkit.export.quantize.export_int8`), cached
  under ``$FERKIT_HOME/cache/int8`` by model weights, calibration files and recipe, and run with onnxruntime.
- Runtimes (``backend``): ``torch`` (the model itself, any precision), ``onnx`` (onnxruntime) and ``openvino``
  (fp32 or int8 ONNX files; a PyTorch model is exported once, parity-checked, and cached under
  ``$FERKIT_HOME/cache/fp32``), ``auto``: :func:`choose_backend`.
- ONNX file: the precision is the file's (its sidecar says ``fp32`` or ``int8``); ``auto`` or that precision are
  accepted, anything else is an error naming the export command that makes the other file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

from ferkit.device import INFERENCE_PRECISIONS, PrecisionChoice, choose_precision, resolve_precision
from ferkit.errors import ConfigError

log = logging.getLogger(__name__)

_ALIASES = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16", "half": "fp16"}

#: the runtimes ``ferkit.load(backend=...)`` takes (``auto``: :func:`choose_backend`)
BACKENDS = ("auto", "torch", "onnx", "openvino")
_BACKEND_ALIASES = {"onnxruntime": "onnx", "ort": "onnx", "ov": "openvino", "pytorch": "torch"}

INT8_NEEDS = ("precision 'int8' needs an int8 model: pass calibrate=DIR (a folder of face images, e.g. a few "
              "hundred crops like the model's training faces; CLI --calibrate DIR) to quantize this model, or load an "
              "int8 ONNX file made by `ferkit export onnx --model M --out M_int8.onnx --int8 --calibrate DIR`")


def canonical(precision: str | None) -> str | None:
    """The precision name (``auto``, ``fp32``, ``bf16``, ``fp16``, ``int8``) or None; aliases accepted.

    Raises:
        ConfigError: an unknown precision.
    """
    return _canonical(precision, _ALIASES, INFERENCE_PRECISIONS, "precision")


def _canonical(value: str | None, aliases: dict[str, str], names: tuple[str, ...], what: str) -> str | None:
    if value is None:
        return None
    key = aliases.get(str(value).strip().lower(), str(value).strip().lower())
    if key not in names:
        raise ConfigError(f"unknown {what} {value!r}; expected one of {', '.join(names)}")
    return key


def for_torch_model(precision: str | None, device: torch.device, *, calibrate: Any = None) -> PrecisionChoice:
    """The precision a PyTorch model runs at and why (``None`` = fp32; ``auto``: :func:`choose_precision`, with int8
    available when calibration images are given).

    Raises:
        ConfigError: an unknown precision, fp16 on the CPU, int8 without ``calibrate`` or on a GPU.
    """
    key = canonical(precision)
    if key == "auto":
        choice = choose_precision(device, int8_available=calibrate is not None)
    else:
        choice = PrecisionChoice(key or "fp32", "requested" if key else "the default (no autocast)")
    if choice.precision == "int8":
        if calibrate is None:
            raise ConfigError(INT8_NEEDS)
        if device.type != "cpu":
            raise ConfigError(f"precision 'int8' runs on the CPU (onnxruntime), not on {device}; use device='cpu'")
    else:
        resolve_precision(choice.precision, device)  # fp16 on the CPU: the one error message
    return choice


class BackendChoice(NamedTuple):
    """The runtime :func:`choose_backend` picked (``torch``, ``onnx``, ``openvino``) and why."""

    name: str
    reason: str


def canonical_backend(backend: str | None) -> str | None:
    """The runtime name (``auto``, ``torch``, ``onnx``, ``openvino``) or None; ``onnxruntime``/``ort``/``ov`` accepted.

    Raises:
        ConfigError: an unknown runtime.
    """
    return _canonical(backend, _BACKEND_ALIASES, BACKENDS, "backend")


def runtime_available(name: str) -> bool:
    """Whether runtime ``name`` can run an ONNX file here (``onnx``: onnxruntime, ``openvino``: openvino); a PyTorch
    model also needs :func:`export_available`."""
    return _installed(*{"torch": (), "onnx": ("onnxruntime",), "openvino": ("openvino",)}[name])


def export_available() -> bool:
    """Whether a PyTorch model can be exported to ONNX here (onnx, and onnxruntime for the parity check)."""
    return _installed("onnx", "onnxruntime")


def _installed(*modules: str) -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in modules)


def choose_backend(backend: str | None, precision: str, device: torch.device, *, onnx_file: bool,
                   available: Any = None) -> BackendChoice:
    """The runtime that runs a model at ``precision`` (already chosen) on ``device``, and why.

    ``None`` (the default): ``onnx`` for an ONNX file or an int8 model, else ``torch``. ``auto`` (also what
    ``precision="auto"`` implies): on the CPU, fp32 runs with OpenVINO when installed, else onnxruntime, else PyTorch
    (measured: OpenVINO 1.3-2.7x PyTorch's ``for_inference`` model, onnxruntime 1.2-2x; docs/performance.md); int8 with
    onnxruntime (the runtime its recipe was measured with), else OpenVINO; bf16 with PyTorch (autocast); on a GPU
    PyTorch (an ONNX file: onnxruntime). An explicit runtime is checked against the precision and device.

    Args:
        available: ``name -> bool`` for the runtimes (default :func:`runtime_available`; a model also needs
            :func:`export_available`).

    Raises:
        ConfigError: a runtime that cannot run this precision, file or device.
    """
    have = available or (lambda name: runtime_available(name) and (onnx_file or name == "torch"
                                                                    or export_available()))
    what = "the ONNX file" if onnx_file else "the model"
    if backend is None:
        name = "onnx" if onnx_file or precision == "int8" else "torch"
        return BackendChoice(name, "the default runtime for " + ("an int8 model" if precision == "int8" and
                                                                   not onnx_file else what))
    if backend == "auto":
        if device.type != "cpu":
            name = "onnx" if onnx_file else "torch"
            return BackendChoice(name, f"{device.type} runs {what} with {'onnxruntime' if onnx_file else 'PyTorch'}")
        if precision in ("bf16", "fp16"):
            return BackendChoice("torch", f"{precision} runs as PyTorch autocast")
        order = ("onnx", "openvino") if precision == "int8" else ("openvino", "onnx")
        for name in order:
            if have(name):
                return BackendChoice(name, f"{precision} on the CPU runs fastest with "
                                             f"{'OpenVINO' if name == 'openvino' else 'onnxruntime'} (installed)")
        if onnx_file or precision == "int8":
            raise ConfigError(f"{what} needs onnxruntime or openvino: pip install 'ferkit[onnx]' or "
                              "'ferkit[openvino]'")
        return BackendChoice("torch", "neither OpenVINO nor onnxruntime (with onnx, for the export) is installed")
    if backend == "torch":
        if onnx_file:
            raise ConfigError("an ONNX file runs with backend 'onnx' or 'openvino', not 'torch'")
        if precision == "int8":
            raise ConfigError("int8 models run with backend 'onnx' or 'openvino' (onnxruntime / OpenVINO), not 'torch'")
        return BackendChoice("torch", "requested")
    if precision in ("bf16", "fp16"):
        raise ConfigError(f"precision {precision!r} runs with backend 'torch' (autocast); backend {backend!r} runs "
                          "fp32 and int8 ONNX models")
    if backend == "openvino" and device.type != "cpu":
        raise ConfigError(f"the OpenVINO backend runs on the CPU, not on {device}; use backend='torch' for a GPU")
    return BackendChoice(backend, "requested")


def for_onnx_file(precision: str | None, path: str | os.PathLike, meta: dict[str, Any]) -> PrecisionChoice:
    """The precision of an exported file (``meta``: its sidecar); ``precision`` must be None, ``auto`` or that.

    Raises:
        ConfigError: another precision was asked for (the message names the export that makes it).
    """
    from ferkit.export.quantize import file_precision

    key, have = canonical(precision), file_precision(meta)
    if key in (None, "auto", have):
        return PrecisionChoice(have, "the precision of the ONNX file" if key != "auto" else
                               f"an ONNX file runs at its own precision ({have})")
    hint = ("export it with `ferkit export onnx ... --int8 --calibrate DIR`" if key == "int8" else
            "load the PyTorch model (autocast), or export an fp32 file" if key in ("bf16", "fp16") else
            "export the fp32 model with `ferkit export onnx --model M --out M.onnx`")
    raise ConfigError(f"{path} is an {have} ONNX model; precision {key!r} is not available for it: {hint}")


def _digest(net: nn.Module, extra: dict[str, Any]) -> str:
    """SHA-256 over ``extra`` (JSON) and every tensor of the model's state dict: the cache key of an export."""
    key = hashlib.sha256(json.dumps(extra, sort_keys=True).encode())
    for name, tensor in sorted(net.state_dict().items()):
        key.update(name.encode())
        key.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return key.hexdigest()[:16]


def _cached(net: nn.Module, kind: str, extra: dict[str, Any]) -> Path:
    from ferkit.paths import cache_subdir

    model_name = getattr(net, "model_name", type(net).__name__)
    return cache_subdir("cache", kind) / f"{model_name}-{kind}-{_digest(net, {'model': model_name, **extra})}.onnx"


def _is_complete(path: Path) -> bool:
    return path.is_file() and path.with_name(path.name + ".json").is_file()


def fp32_model(net: nn.Module) -> Path:
    """The cached fp32 ONNX file of ``net`` (``ferkit export onnx``, parity-checked against PyTorch), for the ONNX and
    OpenVINO backends; made when missing (keyed by the model's weights and the exporter's opset)."""
    from ferkit.export.onnx import DEFAULT_OPSET, export_onnx

    path = _cached(net, "fp32", {"opset": DEFAULT_OPSET, "torch": torch.__version__.split("+")[0]})
    if _is_complete(path):
        log.info("fp32 ONNX model from the cache: %s", path)
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    log.info("exporting %s to ONNX for a faster runtime (once; cached as %s)", getattr(net, "model_name", "the model"),
             path)
    export_onnx(net, path)
    return path


def int8_model(net: nn.Module, calibrate: str | os.PathLike, count: int | None) -> Path:
    """The cached int8 ONNX file of ``net`` calibrated on ``count`` images of ``calibrate``; made when missing."""
    from ferkit.export.quantize import calibration_files, calibration_hash, export_int8, int8_recipe

    files = calibration_files(calibrate, count)
    model_name = getattr(net, "model_name", type(net).__name__)
    path = _cached(net, "int8", {"recipe": int8_recipe(model_name), "calibration": calibration_hash(files),
                                 "count": len(files)})
    if _is_complete(path):
        log.info("int8 model from the cache: %s", path)
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    log.warning("quantizing %s to int8 with %d calibration images of %s (once; cached as %s)",
                getattr(net, "model_name", "the model"), len(files), calibrate, path)
    export_int8(net, path, calibrate=calibrate, count=count)
    return path
