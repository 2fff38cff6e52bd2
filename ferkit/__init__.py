"""ferkit: facial expression recognition with POSTER++ and MPA-FER.

The top-level names load on first use (PEP 562), so ``import ferkit`` and light sub-modules such as ``ferkit.labels``
do not import torch, timm or the models until they are needed.
"""

from __future__ import annotations

import importlib
import importlib.util
from importlib import metadata as _metadata
from typing import TYPE_CHECKING, Any

try:
    __version__ = _metadata.version("ferkit")
except _metadata.PackageNotFoundError:  # a source tree that is not installed
    __version__ = "0.1.0"

#: public name -> module that defines it
_LAZY = {"create_model": "ferkit.models", "list_models": "ferkit.models", "list_pretrained": "ferkit.models",
         "load": "ferkit.infer", "CANONICAL": "ferkit.labels"}

__all__ = ["create_model", "list_models", "list_pretrained", "load", "CANONICAL", "__version__"]

if TYPE_CHECKING:
    from ferkit.infer import load
    from ferkit.labels import CANONICAL
    from ferkit.models import create_model, list_models, list_pretrained


def __getattr__(name: str) -> Any:
    """The public functions, and sub-packages (``ferkit.detect.create_detector`` after a bare ``import ferkit``)."""
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    elif not name.startswith("_") and importlib.util.find_spec(f"ferkit.{name}") is not None:
        value = importlib.import_module(f"ferkit.{name}")
    else:
        raise AttributeError(f"module 'ferkit' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
