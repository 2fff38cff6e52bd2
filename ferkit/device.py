"""Device strings (``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps``) and autocast precision (``fp32``, ``bf16``,
``fp16``, ``auto``), shared by inference, training, evaluation and detection.

One policy for every entry point: :func:`resolve_precision` names the precision and refuses fp16 on the CPU
(``ConfigError`` naming ``bf16`` / ``fp32``); :func:`autocast` is the only autocast context ferkit uses.
:func:`choose_precision` is the rule behind ``auto`` (CPU flags and GPU), with the reason of its choice; inference
adds ``int8`` (a quantized ONNX model) to the autocast precisions."""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass

import torch

from ferkit.errors import ConfigError

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
_ALIASES = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16", "half": "fp16"}
#: what ``ferkit.load(precision=...)`` takes: the autocast precisions, ``int8`` (a quantized ONNX model) and ``auto``
INFERENCE_PRECISIONS = ("auto", "fp32", "bf16", "fp16", "int8")
#: CPU flags (Linux ``/proc/cpuinfo`` names) with native bf16 matrix instructions: bf16 autocast pays off
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")
#: CPU flags with int8 dot-product instructions (VNNI): int8 kernels pay off
INT8_CPU_FLAGS = ("amx_int8", "avx512_vnni", "avx_vnni")


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """A ``torch.device`` from a user string. ``auto`` (or None) picks cuda > mps > cpu.

    Raises:
        ConfigError: malformed string, or a device that this machine does not have.
    """
    if isinstance(device, torch.device):
        device = str(device)
    name = "auto" if device is None else str(device).strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if _mps_available() else "cpu")
    if not re.fullmatch(r"cpu|mps|cuda(:\d+)?", name):
        raise ConfigError(f"unknown device {device!r}; expected 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device {device!r} requested but CUDA is not available (torch {torch.__version__}, "
                              f"CUDA build: {torch.version.cuda or 'none'}); use device='cpu' or 'auto'")
        index = int(name.split(":")[1]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise ConfigError(f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s) visible")
    if name == "mps" and not _mps_available():
        raise ConfigError("device 'mps' requested but Apple MPS is not available; use device='cpu' or 'auto'")
    return torch.device(name)


#: the error for fp16 on the CPU, the same from every entry point (training, evaluation, inference)
CPU_FP16_MESSAGE = ("precision 'fp16' needs a GPU: fp16 autocast on the CPU is slow and not numerically useful; "
                    "use 'bf16' or 'fp32' on the CPU")


def resolve_precision(precision: str | torch.dtype | None, device: str | torch.device | None = None, *,
                      allow_cpu_fp16: bool = False) -> str:
    """The canonical precision name (``fp32``, ``bf16`` or ``fp16``) of a user value, checked against ``device``.

    The one precision policy of ferkit; training, evaluation and inference all go through it.

    Args:
        precision: ``fp32`` / ``bf16`` / ``fp16``, an alias (``float32``, ``bfloat16``, ``float16``, ``half``), a torch
            dtype, None (= fp32), or ``auto``: :func:`choose_precision` without int8 (bf16 on a CUDA device that
            supports it and on a CPU with AMX / AVX512-BF16, else fp32; needs ``device``).
        device: where the autocast will run; None skips the device checks.
        allow_cpu_fp16: accept fp16 on the CPU (tests of loss scaling without a GPU); off everywhere else.

    Raises:
        ConfigError: an unknown precision; ``auto`` without a device; fp16 on the CPU (names ``bf16`` / ``fp32``).
    """
    if precision is None or isinstance(precision, torch.dtype):
        by_dtype = {None: "fp32", torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}
        if precision not in by_dtype:
            raise ConfigError(f"unsupported autocast dtype {precision}; expected one of {', '.join(PRECISIONS)}")
        key = by_dtype[precision]
    else:
        key = _ALIASES.get(str(precision).strip().lower(), str(precision).strip().lower())
    dev = None if device is None else device if isinstance(device, torch.device) else resolve_device(device)
    if key == "auto":
        if dev is None:
            raise ConfigError("precision 'auto' needs a device to choose between bf16 and fp32")
        key = choose_precision(dev).precision
    if key not in PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r}; expected one of {', '.join(PRECISIONS)} or 'auto'")
    if key == "fp16" and dev is not None and dev.type == "cpu" and not allow_cpu_fp16:
        raise ConfigError(CPU_FP16_MESSAGE)
    return key


def precision_dtype(precision: str | torch.dtype | None) -> torch.dtype | None:
    """The autocast dtype of a precision (:func:`resolve_precision` rules): None for fp32, else bfloat16 / float16."""
    return PRECISIONS[resolve_precision(precision)]


def autocast(device: str | torch.device, precision: str | torch.dtype | None = "fp32", *,
             allow_cpu_fp16: bool = False) -> contextlib.AbstractContextManager:
    """``torch.autocast`` for the device type at ``precision``, or a no-op for fp32.

    ``precision`` follows :func:`resolve_precision` (a name, an alias, a dtype or ``auto``).

    Raises:
        ConfigError: see :func:`resolve_precision` (fp16 on the CPU unless ``allow_cpu_fp16``).
    """
    device = device if isinstance(device, torch.device) else resolve_device(device)
    dtype = PRECISIONS[resolve_precision(precision, device, allow_cpu_fp16=allow_cpu_fp16)]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


@dataclass(frozen=True)
class PrecisionChoice:
    """What :func:`choose_precision` picked (``fp32``, ``bf16`` or ``int8``) and why, in one sentence."""

    precision: str
    reason: str


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags, lower case, with Linux ``/proc/cpuinfo`` names (``avx2``, ``avx512_vnni``,
    ``amx_bf16``, ...). Elsewhere (or when that file is unreadable) they are derived from
    ``torch.backends.cpu.get_cpu_capability()`` (``AVX2`` -> ``avx2``, ``AVX512`` -> ``avx2``, ``avx512f``), which
    does not tell VNNI, AVX512-BF16 or AMX apart: such CPUs then get fp32 from ``auto``."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith(("flags", "Features")):  # x86, ARM
                    return frozenset(line.split(":", 1)[1].lower().split())
    except OSError:
        pass
    capability = str(getattr(torch.backends.cpu, "get_cpu_capability", lambda: "")()).upper()
    return frozenset({"AVX2": {"avx2"}, "AVX512": {"avx2", "avx512f"}}.get(capability, set()))


def choose_precision(device: str | torch.device | None = "auto", *, int8_available: bool = False,
                     flags: Iterable[str] | None = None) -> PrecisionChoice:
    """The inference precision ``auto`` means on ``device``, and the reason.

    The rule (measurements behind it: docs/inference.md, "Precision"):

    - CUDA: ``bf16`` when the GPU supports it (``torch.cuda.is_bf16_supported()``), else ``fp32``; MPS: ``fp32``.
    - CPU with AMX-BF16 or AVX512-BF16 (``amx_bf16``, ``avx512_bf16``): ``bf16`` autocast.
    - CPU with VNNI (``avx512_vnni``, ``avx_vnni``, ``amx_int8``) and an int8 model at hand (``int8_available``: an
      int8 ONNX file, or calibration images to make one): ``int8``.
    - else ``fp32``: on AVX2 without VNNI int8 is not faster at the agreement ferkit requires (measured), and bf16
      autocast is emulated (about 2x slower than fp32).

    Args:
        device: where the model runs (a string as :func:`resolve_device` takes, a ``torch.device``, or None = CPU).
        int8_available: an int8 model of this model can be used. flags: CPU flags (default: :func:`cpu_flags`).
    """
    dev = torch.device("cpu") if device is None else device if isinstance(device, torch.device) \
        else resolve_device(device)
    if dev.type == "cuda":
        if torch.cuda.is_bf16_supported():
            return PrecisionChoice("bf16", f"CUDA device {torch.cuda.get_device_name(dev)} supports bf16")
        return PrecisionChoice("fp32", "this CUDA device has no bf16 support (fp16 is not chosen automatically)")
    if dev.type != "cpu":
        return PrecisionChoice("fp32", f"no reduced precision is chosen automatically on {dev.type}")
    have = {f.lower() for f in (cpu_flags() if flags is None else flags)}
    bf16 = [f for f in BF16_CPU_FLAGS if f in have]
    if bf16:
        return PrecisionChoice("bf16", f"the CPU has native bf16 instructions ({', '.join(bf16)})")
    vnni = [f for f in INT8_CPU_FLAGS if f in have]
    if vnni and int8_available:
        return PrecisionChoice("int8", f"the CPU has int8 dot-product instructions ({', '.join(vnni)}) and an int8 "
                                       "model is available")
    if vnni:
        return PrecisionChoice("fp32", f"the CPU has VNNI ({', '.join(vnni)}) but no int8 model is available (give "
                                       "calibration images or an int8 ONNX file); no native bf16")
    simd = "AVX2" if "avx2" in have else "no AVX2"
    return PrecisionChoice("fp32", f"the CPU has {simd} but neither native bf16 (AMX / AVX512-BF16) nor int8 "
                                   "dot products (VNNI): fp32 is the fastest precision that agrees")
