"""Model registry: ``@register_model`` on short entry functions; names are unique."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from torch import nn


class CheckpointAdapter(Protocol):
    """Reads checkpoints of one model family (official layouts and ferkit's own)."""

    def inspect(self, ckpt: dict[str, Any]) -> dict[str, Any]:
        """Return ``{"format", "num_classes", "label_names", "model", "model_args"}`` (values may be None)."""

    def load(self, model: nn.Module, ckpt: dict[str, Any], *, reset_head: bool = False) -> dict[str, Any]:
        """Load ``ckpt`` into ``model`` strictly; return a report (counts per part, dropped keys)."""


@dataclass(frozen=True)
class ModelEntry:
    name: str
    family: str
    builder: Callable[..., nn.Module]
    adapter: CheckpointAdapter
    description: str = ""
    defaults: dict[str, Any] = field(default_factory=dict)


_MODELS: dict[str, ModelEntry] = {}


def register_model(name: str, *, family: str, builder: Callable[..., nn.Module], adapter: CheckpointAdapter,
                   description: str = "", **defaults: Any) -> ModelEntry:
    """Register ``name``; ``defaults`` are config overrides that define a variant (e.g. ``vit_depth=4``)."""
    if name in _MODELS:
        raise ValueError(f"model {name!r} is already registered")
    entry = ModelEntry(name, family, builder, adapter, description, dict(defaults))
    _MODELS[name] = entry
    return entry


def list_models(pattern: str | None = None) -> list[str]:
    """Registered model names, sorted; ``pattern`` is a shell-style filter (``"poster*"``)."""
    names = sorted(_MODELS)
    return [n for n in names if fnmatch.fnmatch(n, pattern)] if pattern else names


def get_entry(name: str) -> ModelEntry:
    if name not in _MODELS:
        raise ValueError(f"unknown model {name!r}; registered models: {', '.join(list_models())}")
    return _MODELS[name]
