"""Train and eval transforms as POSTER++ and MPA-FER use them (torchvision, PIL input -> normalised tensor).

POSTER++ (official ``main.py``): train ``Resize((224, 224))`` -> ``RandomHorizontalFlip()`` -> ``ToTensor()`` ->
``Normalize(ImageNet)`` -> ``RandomErasing`` with the per-data-set setting (RAF-DB ``p=0.5, scale=(0.02, 0.1)``;
AffectNet-7/8 and CAER-S ``p=1, scale=(0.05, 0.05)``); eval ``Resize((224, 224))`` -> ``ToTensor()`` -> ``Normalize``.
Erasing comes after normalisation, so erased pixels are 0 = the mean colour.

MPA-FER (ferkit design §10): train ``Resize((256, 256), bicubic)`` -> ``RandomCrop(224)`` -> ``RandomHorizontalFlip``
-> ``ToTensor`` -> ``Normalize(CLIP)`` -> ``RandomErasing(p=0.5, scale=(0.02, 0.1), value=0)``; eval
``Resize((224, 224), bicubic)`` -> ``ToTensor`` -> ``Normalize(CLIP)``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torchvision.transforms as T

from ferkit.config import apply_overrides
from ferkit.errors import ConfigError

logger = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
INTERPOLATIONS = {"nearest": T.InterpolationMode.NEAREST, "bilinear": T.InterpolationMode.BILINEAR,
                  "bicubic": T.InterpolationMode.BICUBIC, "lanczos": T.InterpolationMode.LANCZOS,
                  "box": T.InterpolationMode.BOX, "hamming": T.InterpolationMode.HAMMING}


@dataclass(frozen=True)
class TransformConfig:
    """Every parameter of a ferkit transform (override any of them by name).

    Attributes:
        family: ``"poster_v2"`` or ``"mpa_fer"`` (which defaults were used).
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

    family: str = "poster_v2"
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


FAMILIES: dict[str, dict[str, Any]] = {
    "poster_v2": {"interpolation": "bilinear", "mean": IMAGENET_MEAN, "std": IMAGENET_STD},
    "mpa_fer": {"interpolation": "bicubic", "mean": CLIP_MEAN, "std": CLIP_STD},
}
#: POSTER++'s RandomErasing per data set (official main.py); other data sets get the RAF-DB setting.
POSTER_V2_ERASING: dict[str, dict[str, Any]] = {
    "rafdb": {"erasing_p": 0.5, "erasing_scale": (0.02, 0.1)},
    "affectnet7": {"erasing_p": 1.0, "erasing_scale": (0.05, 0.05)},
    "affectnet8": {"erasing_p": 1.0, "erasing_scale": (0.05, 0.05)},
    "caer_s": {"erasing_p": 1.0, "erasing_scale": (0.05, 0.05)},
}
_DATA_CONFIG_KEYS = ("input_size", "mean", "std", "interpolation", "grayscale")


def _dataset_name(dataset: Any) -> str | None:
    if dataset is None:
        return None
    name = getattr(dataset, "name", dataset)
    from ferkit.data.registry import get_spec

    return get_spec(str(name)).name


def resolve_transform_config(family_or_data_config: str | Mapping[str, Any], train: bool, *, dataset: Any = None,
                             **overrides: Any) -> TransformConfig:
    """The :class:`TransformConfig` for a family name or a model's ``data_config`` dict, a data set (POSTER++ picks
    its erasing setting by data set name) and explicit ``overrides`` (unknown keys raise ``ConfigError``)."""
    if isinstance(family_or_data_config, Mapping):
        data_config = dict(family_or_data_config)
        family = str(data_config.get("family", "poster_v2"))
    else:
        data_config, family = {}, str(family_or_data_config)
    if family not in FAMILIES:
        raise ConfigError(f"unknown transform family {family!r}; known: {', '.join(FAMILIES)}")
    values: dict[str, Any] = {"family": family, "train": bool(train), **FAMILIES[family]}
    if family == "poster_v2":
        values.update(POSTER_V2_ERASING.get(_dataset_name(dataset) or "rafdb", POSTER_V2_ERASING["rafdb"]))
    values.update({k: data_config[k] for k in _DATA_CONFIG_KEYS if data_config.get(k) is not None})
    if isinstance(values.get("input_size"), (tuple, list)):  # (3, H, W) or (H, W) -> H (square inputs only)
        values["input_size"] = int(values["input_size"][-1])
    cfg = apply_overrides(TransformConfig(), values)
    if family == "mpa_fer" and train and "resize_size" not in overrides:
        cfg = dataclasses.replace(cfg, resize_size=round(cfg.input_size * 256 / 224))
    return apply_overrides(cfg, overrides)


def build_transform(family_or_data_config: str | Mapping[str, Any], train: bool, *, dataset: Any = None,
                    **overrides: Any) -> T.Compose:
    """A torchvision ``Compose`` mapping an RGB ``PIL.Image`` to a normalised ``(3, input_size, input_size)`` float
    tensor, as the family's official code does (module docstring); see :func:`resolve_transform_config`.

    Example:
        >>> build_transform("poster_v2", train=True, dataset="affectnet8")  # erasing p=1, scale (0.05, 0.05)
    """
    return compose(resolve_transform_config(family_or_data_config, train, dataset=dataset, **overrides))


def build_eval_transform(family_or_data_config: str | Mapping[str, Any], **overrides: Any) -> T.Compose:
    """The evaluation transform (resize, to tensor, normalise)."""
    return build_transform(family_or_data_config, False, **overrides)


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
