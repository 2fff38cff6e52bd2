"""Transforms of a model: its family's augmentation + its ``data_config`` + the caller's overrides."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ferkit.data.transforms import TransformConfig, compose, transform_config
from ferkit.errors import ConfigError
from ferkit.models._registry import get_entry, get_family, list_families, list_models


def _data_config(model: Any) -> dict[str, Any]:
    """``data_config`` of a model, of a ``data_config`` mapping, or of a family / registered model name."""
    if isinstance(model, Mapping):
        return dict(model)
    if isinstance(model, str):
        if model in list_families():
            return {"family": model}
        if model in list_models():
            return {"family": get_entry(model).family}
        raise ConfigError(f"unknown model family or model {model!r}; families: {', '.join(list_families())}")
    config = getattr(model, "data_config", None)
    if not isinstance(config, Mapping):
        raise ConfigError(f"{type(model).__name__} has no data_config; pass a model, its data_config or a family name")
    return dict(config)


def _dataset_name(dataset: Any) -> str | None:
    if dataset is None:
        return None
    from ferkit.data.registry import get_spec

    return get_spec(str(getattr(dataset, "name", dataset))).name


def resolve_transform_config(model: Any, train: bool, *, dataset: Any = None, **overrides: Any) -> TransformConfig:
    """The :class:`~ferkit.data.transforms.TransformConfig` for ``model`` (a model, its ``data_config``, or a family
    / model name), a data set (POSTER++ picks its erasing by data set) and ``overrides`` (unknown keys raise)."""
    dc = _data_config(model)
    defaults = get_family(str(dc.get("family", ""))).transform_defaults(bool(train), _dataset_name(dataset))
    return transform_config(dc, train, defaults=defaults, **overrides)


def build_transform(model: Any, train: bool, *, dataset: Any = None, **overrides: Any):
    """A torchvision ``Compose``: RGB ``PIL.Image`` -> normalised ``(3, S, S)`` float tensor, as the model family's
    official code does (``ferkit/models/<family>/transforms.py``); see :func:`resolve_transform_config`.

    Example:
        >>> build_transform("poster_v2", train=True, dataset="affectnet8")  # erasing p=1, scale (0.05, 0.05)
    """
    return compose(resolve_transform_config(model, train, dataset=dataset, **overrides))


def build_eval_transform(model: Any, **overrides: Any):
    """The evaluation transform of ``model`` (resize, to tensor, normalise)."""
    return build_transform(model, False, **overrides)
