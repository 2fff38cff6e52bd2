"""Train and eval transforms (torchvision, PIL input -> normalised tensor), described by one dataclass.

This module knows no model family: a family's official augmentation is declared by the family
(``ferkit/models/<family>/transforms.py``, on its registry entry) and passed in as ``defaults``;
:func:`ferkit.models.transforms.build_transform` does that for a model, a model name or a family name.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torchvision.transforms as T

from ferkit.config import apply_overrides
from ferkit.constants import IMAGENET_MEAN, IMAGENET_STD
from ferkit.errors import ConfigError

logger = logging.getLogger(__name__)

INTERPOLATIONS = {"nearest": T.InterpolationMode.NEAREST, "bilinear": T.InterpolationMode.BILINEAR,
                  "bicubic": T.InterpolationMode.BICUBIC, "lanczos": T.InterpolationMode.LANCZOS,
                  "box": T.InterpolationMode.BOX, "hamming": T.InterpolationMode.HAMMING}


@dataclass(frozen=True)
class TransformConfig:
    """Every parameter of a ferkit transform (override any of them by name).

    Attributes:
        family: the model family whose defaults were used (``data_config["family"]``), informative only.
        train: training (augmenting) or evaluation transform.
        input_size: side of the square network input.
        resize_size: train only: resize to this square, then ``RandomCrop(input_size)``; ``None`` resizes straight
            to ``input_size`` (POSTER++). Eval always resizes to ``input_size``.
        interpolation: ``"bilinear"``, ``"bicubic"``, ``"nearest"``, ``"lanczos"``, ``"box"`` or ``"hamming"``.
        mean, std: per-channel normalisation.
        hflip: probability of a horizontal flip (train).
        erasing_p, erasing_scale, erasing_ratio, erasing_value: ``RandomErasing`` after normalisation (train;
            ``erasing_p=0`` disables it).
        rotation, translate, scale: ``RandomAffine`` after the resize (train): up to ``rotation`` degrees, shifts
            up to ``translate`` of the side, zoom in ``scale``; all off by default (the papers use none).
        grayscale: convert to 3-channel grey first (train and eval), for models trained on grey faces (FER2013).
    """

    family: str = ""
    train: bool = True
    input_size: int = 224
    resize_size: int | None = None
    interpolation: str = "bilinear"
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    hflip: float = 0.5
    erasing_p: float = 0.5
    erasing_scale: tuple[float, float] = (0.02, 0.1)
    erasing_ratio: tuple[float, float] = (0.3, 3.3)
    erasing_value: float = 0.0
    rotation: float = 0.0
    translate: float = 0.0
    scale: tuple[float, float] | None = None
    grayscale: bool = False

    def validate(self) -> None:
        if self.interpolation not in INTERPOLATIONS:
            raise ConfigError(f"interpolation {self.interpolation!r} is not one of {list(INTERPOLATIONS)}")
        if self.input_size <= 0 or (self.resize_size is not None and self.resize_size < self.input_size):
            raise ConfigError(f"need 0 < input_size <= resize_size, got {self.input_size}, {self.resize_size}")
        for key in ("hflip", "erasing_p"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise ConfigError(f"{key} must be a probability in [0, 1], got {getattr(self, key)}")
        if min(self.std) <= 0:
            raise ConfigError(f"std must be positive, got {self.std}")
        if self.rotation < 0 or not 0 <= self.translate < 1:
            raise ConfigError(f"need rotation >= 0 and 0 <= translate < 1, got {self.rotation}, {self.translate}")
        if self.scale is not None and not 0 < self.scale[0] <= self.scale[1]:
            raise ConfigError(f"scale must be (min, max) with 0 < min <= max, got {self.scale}")


_DATA_CONFIG_KEYS = ("input_size", "mean", "std", "interpolation", "grayscale")


def transform_config(data_config: Mapping[str, Any], train: bool, *, defaults: Mapping[str, Any] | None = None,
                     **overrides: Any) -> TransformConfig:
    """The :class:`TransformConfig` of a model input: :class:`TransformConfig`'s defaults, then ``defaults`` (a model
    family's augmentation, ``ferkit.models.get_family(name).transform_defaults``), then the model's ``data_config``
    (``input_size``, ``mean``, ``std``, ``interpolation``, ``grayscale``), then ``overrides`` (unknown keys raise
    ``ConfigError``). Families are resolved one layer up, by :func:`ferkit.models.transforms.build_transform`."""
    if not isinstance(data_config, Mapping):
        raise ConfigError(f"expected a model's data_config mapping, got {data_config!r}; for a family or model name "
                          "use ferkit.models.build_transform(name, train, ...)")
    values: dict[str, Any] = {"train": bool(train), **dict(defaults or {})}
    if data_config.get("family") is not None:
        values["family"] = str(data_config["family"])
    values.update({k: data_config[k] for k in _DATA_CONFIG_KEYS if data_config.get(k) is not None})
    if isinstance(values.get("input_size"), (tuple, list)):  # (3, H, W) or (H, W) -> H (square inputs only)
        values["input_size"] = int(values["input_size"][-1])
    resize_ratio = values.pop("resize_ratio", None)
    cfg = apply_overrides(TransformConfig(), values)
    if resize_ratio and train and "resize_size" not in overrides:
        cfg = dataclasses.replace(cfg, resize_size=round(cfg.input_size * resize_ratio))
    return apply_overrides(cfg, overrides)


def compose(cfg: TransformConfig) -> T.Compose:
    """Build the torchvision pipeline described by ``cfg``."""
    cfg.validate()
    interp = INTERPOLATIONS[cfg.interpolation]
    steps: list[Any] = [T.Grayscale(3)] if cfg.grayscale else []
    if cfg.train and cfg.resize_size is not None:
        steps += [T.Resize((cfg.resize_size, cfg.resize_size), interpolation=interp), T.RandomCrop(cfg.input_size)]
    else:
        steps.append(T.Resize((cfg.input_size, cfg.input_size), interpolation=interp))
    if cfg.train and (cfg.rotation or cfg.translate or cfg.scale):
        steps.append(T.RandomAffine(cfg.rotation, translate=(cfg.translate,) * 2 if cfg.translate else None,
                                    scale=tuple(cfg.scale) if cfg.scale else None,
                                    interpolation=T.InterpolationMode.BILINEAR))
    if cfg.train and cfg.hflip > 0:
        steps.append(T.RandomHorizontalFlip(cfg.hflip))
    steps += [T.ToTensor(), T.Normalize(cfg.mean, cfg.std)]
    if cfg.train and cfg.erasing_p > 0:
        steps.append(T.RandomErasing(p=cfg.erasing_p, scale=cfg.erasing_scale, ratio=cfg.erasing_ratio,
                                     value=cfg.erasing_value))
    return T.Compose(steps)
