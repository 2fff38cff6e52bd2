"""Pretrained model weights named ``arch.tag`` (``poster_v2.rafdb``): the file plus everything needed to use it."""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ferkit.hub.assets import get_asset
from ferkit.hub.store import get_weights
from ferkit.labels import DATASET_ORDERS
from ferkit.models.poster_v2.model import IMAGENET_MEAN, IMAGENET_STD

POSTER_V2_PAPER = ("Mao et al., POSTER V2: A simpler and stronger facial expression recognition network, "
                   "arXiv:2301.12149, 2023")


@dataclass(frozen=True)
class PretrainedCfg:
    """What a released weight file is and how to feed it.

    Attributes:
        name: ``arch.tag``. arch: registered model name. asset: weights-registry name of the file.
        num_classes / label_names: ordered canonical class names of the head (index -> name).
        label_order_verified: False when the order is inferred, not established (see ``notes``).
        input_size / mean / std / interpolation: the evaluation preprocessing of the official code.
        crop: face-crop preset (``ferkit.detect.align.CROP_PRESETS``) closest to the training images.
        metrics: published results (percent) on the data set's test split.
    """

    name: str
    arch: str
    asset: str
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

    @property
    def tag(self) -> str:
        return self.name.split(".", 1)[1]

    def to_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


def _poster(tag: str, order: str, dataset: str, crop: str, verified: bool, metrics: dict[str, float],
            notes: str = "") -> PretrainedCfg:
    asset = get_asset(f"poster_v2.{tag}")
    return PretrainedCfg(name=f"poster_v2.{tag}", arch="poster_v2", asset=asset.name,
                         num_classes=len(DATASET_ORDERS[order]), label_names=DATASET_ORDERS[order],
                         label_order_verified=verified, dataset=dataset, crop=crop, licence=asset.licence,
                         paper=POSTER_V2_PAPER, origin_url=asset.origin_url, metrics=metrics, notes=notes)


_AFFECTNET_NOTE = ("class order unverified: assumes class folders named by AffectNet's native ids (0 neutral ... "
                   "6 anger, 7 contempt); the authors do not document it")

PRETRAINED: dict[str, PretrainedCfg] = {c.name: c for c in (
    _poster("rafdb", "rafdb", "RAF-DB basic", "rafdb_aligned", True, {"top1": 92.21, "mean_class": 85.97},
            "order established from the official confusion matrix (RAF-DB label ids 1..7)"),
    _poster("affectnet7", "affectnet7", "AffectNet (7 classes)", "affectnet", False,
            {"top1": 67.49, "mean_class": 67.45}, _AFFECTNET_NOTE),
    _poster("affectnet8", "affectnet8", "AffectNet (8 classes)", "affectnet", False,
            {"top1": 63.77, "mean_class": 63.76}, _AFFECTNET_NOTE),
    _poster("caer_s", "caer_s", "CAER-S", "none", True, {"top1": 93.00},
            "alphabetical ImageFolder order of the official class folders; the official pipeline resizes whole "
            "CAER-S frames (faces with context), hence crop preset 'none'"),
)}


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
    return get_weights(cfg.asset, cache_dir=cache_dir, offline=offline, allow_unverified=allow_unverified), cfg
