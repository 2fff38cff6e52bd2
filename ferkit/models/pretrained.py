"""Pretrained model weights named ``arch.tag`` (``poster_v2.rafdb``): the file plus everything needed to use it.

Each model family registers its own (``ferkit/models/<family>/pretrained.py`` calls :func:`register_pretrained`);
this module holds the registry, the lookup and the fetch through the weights cache (:mod:`ferkit.hub`).
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ferkit.constants import IMAGENET_MEAN, IMAGENET_STD
from ferkit.hub import get_weights


@dataclass(frozen=True)
class PretrainedCfg:
    """What a released weight file is and how to feed it.

    Attributes:
        name: ``arch.tag``. arch: registered model name. asset: weights-registry name of the file (None when the
            file ships inside the package: ``packaged``, a file name under ``ferkit/resources/models``).
        head: ``"main"``, or ``"aux"`` to use the checkpoint's auxiliary head as the classifier (same file, another
            label set, e.g. FER2013's original labels next to FER+).
        num_classes / label_names: ordered canonical class names of the head (index -> name).
        label_order_verified: False when the order is inferred, not established (see ``notes``).
        input_size / mean / std / interpolation: the evaluation preprocessing of the official code.
        crop: face-crop preset (``ferkit.detect.align.CROP_PRESETS``) closest to the training images.
        metrics: published results (percent) on the data set's test split (ferkit's own, measured, for models
            trained here).
        sources: what the weights were made from (file, SHA-256, licence per part); recipe: the training config.
    """

    name: str
    arch: str
    asset: str | None
    num_classes: int
    label_names: tuple[str, ...]
    label_order_verified: bool
    dataset: str
    input_size: int = 224
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    interpolation: str = "bilinear"
    crop: str = "square"
    licence: str = ""
    paper: str = ""
    origin_url: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    notes: str = ""
    packaged: str | None = None
    head: str = "main"
    sources: dict[str, Any] = field(default_factory=dict)
    recipe: str = ""

    @property
    def tag(self) -> str:
        return self.name.split(".", 1)[1]

    def to_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


#: ``ferkit.load()`` / ``ferkit predict`` without a model use this.
DEFAULT_MODEL = "poster_v2_open.ferplus"

#: name -> config, in registration order (the families' modules fill it when ``ferkit.models`` is imported).
PRETRAINED: dict[str, PretrainedCfg] = {}


def register_pretrained(cfg: PretrainedCfg) -> PretrainedCfg:
    """Add released weights; ``cfg.arch`` must be a registered model (checked by ``create_model`` when used)."""
    if cfg.name in PRETRAINED:
        raise ValueError(f"pretrained weights {cfg.name!r} are already registered")
    if not cfg.name.startswith(f"{cfg.arch}."):
        raise ValueError(f"pretrained name {cfg.name!r} must be '<arch>.<tag>' with arch {cfg.arch!r}")
    PRETRAINED[cfg.name] = cfg
    return cfg


def list_pretrained(pattern: str | None = None) -> list[str]:
    """Names of pretrained weights (``arch.tag``), optionally filtered by a shell-style pattern."""
    return [n for n in PRETRAINED if pattern is None or fnmatch.fnmatch(n, pattern)]


def get_pretrained_cfg(name: str) -> PretrainedCfg:
    """The :class:`PretrainedCfg` of ``arch.tag``.

    Raises:
        ValueError: unknown name (the message lists the known ones).
    """
    if name not in PRETRAINED:
        raise ValueError(f"unknown pretrained weights {name!r}; known: {', '.join(PRETRAINED)}")
    return PRETRAINED[name]


def resolve_pretrained(name: str, *, cache_dir: str | os.PathLike | None = None, offline: bool | None = None,
                       allow_unverified: bool = False) -> tuple[Path, PretrainedCfg]:
    """File and config of pretrained weights ``arch.tag``, fetched through the weights cache.

    Raises:
        ValueError: unknown name. WeightsError: the file is not available (see :func:`ferkit.hub.get_weights`).
    """
    cfg = get_pretrained_cfg(name)
    if cfg.packaged:
        return packaged_model(cfg.packaged), cfg
    return get_weights(cfg.asset, cache_dir=cache_dir, offline=offline, allow_unverified=allow_unverified), cfg


def packaged_model(filename: str) -> Path:
    """Path of a model file shipped inside the package (``ferkit/resources/models``)."""
    from importlib.resources import files

    from ferkit.errors import WeightsError

    path = Path(str(files("ferkit") / "resources" / "models" / filename))
    if not path.is_file():
        raise WeightsError(f"the packaged model file {path} is missing: the installation is incomplete; reinstall "
                           "ferkit (`pip install --force-reinstall ferkit`)")
    return path
