"""``ferkit.load(precision=...)``: what each precision means for a PyTorch model and for an exported ONNX file, the
``auto`` choice (:func:`ferkit.device.choose_precision`) and int8 models made on the fly from calibration images.

- PyTorch model: ``fp32`` / ``bf16`` / ``fp16`` are autocast precisions; ``int8`` needs calibration images
  (``calibrate=DIR``): the model is exported and quantized once (:func:`ferkit.export.quantize.export_int8`), cached
  under ``$FERKIT_HOME/cache/int8`` by model weights, calibration files and recipe, and run with onnxruntime.
- ONNX file: the precision is the file's (its sidecar says ``fp32`` or ``int8``); ``auto`` or that precision are
  accepted, anything else is an error naming the export command that makes the other file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ferkit.device import INFERENCE_PRECISIONS, PrecisionChoice, choose_precision, resolve_precision
from ferkit.errors import ConfigError

log = logging.getLogger(__name__)

_ALIASES = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16", "half": "fp16"}

INT8_NEEDS = ("precision 'int8' needs an int8 model: pass calibrate=DIR (a folder of face images, e.g. a few "
              "hundred crops like the model's training faces; CLI --calibrate DIR) to quantize this model, or load an "
              "int8 ONNX file made by `ferkit export onnx --model M --out M_int8.onnx --int8 --calibrate DIR`")


def canonical(precision: str | None) -> str | None:
    """The precision name (``auto``, ``fp32``, ``bf16``, ``fp16``, ``int8``) or None; aliases accepted.

    Raises:
        ConfigError: an unknown precision.
    """
    if precision is None:
        return None
    key = _ALIASES.get(str(precision).strip().lower(), str(precision).strip().lower())
    if key not in INFERENCE_PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r}; expected one of {', '.join(INFERENCE_PRECISIONS)}")
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


def int8_model(net: nn.Module, calibrate: str | os.PathLike, count: int | None) -> Path:
    """The cached int8 ONNX file of ``net`` calibrated on ``count`` images of ``calibrate``; made when missing."""
    from ferkit.export.quantize import calibration_files, calibration_hash, export_int8, int8_recipe
    from ferkit.paths import cache_subdir

    files = calibration_files(calibrate, count)
    key = hashlib.sha256()
    model_name = getattr(net, "model_name", type(net).__name__)
    key.update(json.dumps({"model": model_name, "recipe": int8_recipe(model_name),
                           "calibration": calibration_hash(files), "count": len(files)}, sort_keys=True).encode())
    for name, tensor in sorted(net.state_dict().items()):
        key.update(name.encode())
        key.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    name = f"{getattr(net, 'model_name', 'model')}-int8-{key.hexdigest()[:16]}.onnx"
    path = cache_subdir("cache", "int8") / name
    if path.is_file() and path.with_name(path.name + ".json").is_file():
        log.info("int8 model from the cache: %s", path)
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    log.warning("quantizing %s to int8 with %d calibration images of %s (once; cached as %s)",
                getattr(net, "model_name", "the model"), len(files), calibrate, path)
    export_int8(net, path, calibrate=calibrate, count=count)
    return path
