"""Device strings (``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps``) and autocast precision (``fp32``, ``bf16``,
``fp16``), shared by inference, training, evaluation and detection."""

from __future__ import annotations

import contextlib
import re

import torch

from ferkit.errors import ConfigError

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
_ALIASES = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16", "half": "fp16"}


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


def resolve_precision(precision: str) -> torch.dtype | None:
    """Autocast dtype for ``fp32`` (None: no autocast), ``bf16`` or ``fp16``."""
    key = _ALIASES.get(str(precision).lower(), str(precision).lower())
    if key not in PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r}; expected one of {', '.join(PRECISIONS)}")
    return PRECISIONS[key]


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """``torch.autocast`` for the device type, or a no-op for fp32.

    Raises:
        ConfigError: fp16 on the CPU (not supported there by autocast in a useful way).
    """
    if dtype is None:
        return contextlib.nullcontext()
    if device.type == "cpu" and dtype == torch.float16:
        raise ConfigError("precision 'fp16' needs a GPU; use 'bf16' or 'fp32' on the CPU")
    return torch.autocast(device_type=device.type, dtype=dtype)
