"""Model registry: families (what a group of models owns) and models (a name, a builder, a checkpoint adapter).

A family registers once with :func:`register_family` (its transform defaults and the overrides ``ferkit info`` may
use); each model then registers with :func:`register_model`. Model names are unique. Everything else a model family
provides is a method of :class:`ferkit.models.base.FerModel` (export, explanation, training hooks) or a pretrained
config (:func:`ferkit.models.pretrained.register_pretrained`). See docs/architecture.md.
"""

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


def no_transform_defaults(train: bool, dataset: str | None) -> dict[str, Any]:
    """A family without its own augmentation: :class:`ferkit.data.transforms.TransformConfig`'s defaults."""
    return {}


@dataclass(frozen=True)
class Family:
    """What a model family owns besides its modules.

    Attributes:
        name: family name (``"poster_v2"``), also ``data_config["family"]`` of its models.
        transform_defaults: ``(train, dataset name or None) -> TransformConfig fields``: the family's official
            augmentation (e.g. POSTER++'s per-data-set random erasing); the model's ``data_config`` (input size,
            mean / std, interpolation, grey) and the user's overrides come on top.
        info_overrides: build arguments ``ferkit info`` adds when the user gave none of them (e.g. MPA-FER: a random
            CLIP, since parameter counts and MACs do not depend on its values).
        description: one line for ``ferkit models``.
    """

    name: str
    transform_defaults: Callable[[bool, str | None], dict[str, Any]] = no_transform_defaults
    info_overrides: dict[str, Any] = field(default_factory=dict)
    description: str = ""


_FAMILIES: dict[str, Family] = {}


def register_family(name: str, *, transform_defaults: Callable[[bool, str | None], dict[str, Any]] | None = None,
                    info_overrides: dict[str, Any] | None = None, description: str = "") -> Family:
    """Register a model family (once; its models then name it in :func:`register_model`)."""
    if name in _FAMILIES:
        raise ValueError(f"model family {name!r} is already registered")
    fam = Family(name, transform_defaults or no_transform_defaults, dict(info_overrides or {}), description)
    _FAMILIES[name] = fam
    return fam


def get_family(name: str) -> Family:
    """The registered :class:`Family`; a family nobody registered (a plugin's) gets the defaults."""
    return _FAMILIES.get(name) or Family(name)


def list_families() -> list[str]:
    return sorted(_FAMILIES)


@dataclass(frozen=True)
class ModelEntry:
    name: str
    family: str
    builder: Callable[..., nn.Module]
    adapter: CheckpointAdapter
    description: str = ""
    defaults: dict[str, Any] = field(default_factory=dict)

    @property
    def family_spec(self) -> Family:
        return get_family(self.family)


_MODELS: dict[str, ModelEntry] = {}


def register_model(name: str, *, family: str, builder: Callable[..., nn.Module],
                   adapter: CheckpointAdapter | None = None, description: str = "", **defaults: Any) -> ModelEntry:
    """Register ``name``; ``defaults`` are config overrides that define a variant (e.g. ``vit_depth=4``).

    ``builder(label_names=, num_classes=, trust_checkpoint=, **config) -> FerModel``; ``adapter`` reads the family's
    checkpoint layouts (default: :class:`~ferkit.models.adapter.FerkitCheckpointAdapter`, ferkit checkpoints only).
    """
    if name in _MODELS:
        raise ValueError(f"model {name!r} is already registered")
    if adapter is None:
        from ferkit.models.adapter import FerkitCheckpointAdapter

        adapter = FerkitCheckpointAdapter()
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
