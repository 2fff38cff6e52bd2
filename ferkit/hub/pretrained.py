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
from ferkit.models.poster_v2.streams import DLIB_NORM, IMAGENET_MEAN, IMAGENET_STD

POSTER_V2_PAPER = ("Mao et al., POSTER V2: A simpler and stronger facial expression recognition network, "
                   "arXiv:2301.12149, 2023")


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


def _poster(tag: str, order: str, dataset: str, crop: str, verified: bool, metrics: dict[str, float],
            notes: str = "") -> PretrainedCfg:
    asset = get_asset(f"poster_v2.{tag}")
    return PretrainedCfg(name=f"poster_v2.{tag}", arch="poster_v2", asset=asset.name,
                         num_classes=len(DATASET_ORDERS[order]), label_names=DATASET_ORDERS[order],
                         label_order_verified=verified, dataset=dataset, crop=crop, licence=asset.licence,
                         paper=POSTER_V2_PAPER, origin_url=asset.origin_url, metrics=metrics, notes=notes)


_AFFECTNET_NOTE = ("class order unverified: assumes class folders named by AffectNet's native ids (0 neutral ... "
                   "6 anger, 7 contempt); the authors do not document it")

OPEN_FILE = "poster_v2_open_ferplus.safetensors"
OPEN_LICENCE = ("weights: CC-BY-4.0 by the ferkit developers, derived from dlib-models (CC0-1.0) and MediaPipe "
                "FaceMesh (Apache-2.0); trained on FER2013 images (Kaggle, research use) with FER+ labels (MIT) - "
                "see NOTICE and docs/model_card.md")
OPEN_SOURCES = {
    "image_stream": {"asset": "dlib_resnet",
                     "sha256": "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
                     "licence": "CC0-1.0"},
    "landmark_stream": {"asset": "facemesh",
                        "sha256": "1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814",
                        "licence": "Apache-2.0"},
    "data": "FER+ (FER2013Train votes, MIT labels) + FER2013 Training original labels; images: Kaggle FER2013",
}
OPEN_NOTE = ("trained here on a 2-core CPU (configs/poster_v2_open_ferplus.yaml); 48x48 grey training faces: inputs "
             "are converted to grey; crop 'fer2013' matches YuNet boxes to the FER framing; see docs/model_card.md")


def _open(tag: str, order: str, head: str, metrics: dict[str, float]) -> PretrainedCfg:
    return PretrainedCfg(name=f"poster_v2_open.{tag}", arch="poster_v2_open", asset=None,
                         num_classes=len(DATASET_ORDERS[order]), label_names=DATASET_ORDERS[order],
                         label_order_verified=True, dataset="FER+" if order == "ferplus" else "FER2013",
                         input_size=112, mean=DLIB_NORM[0], std=DLIB_NORM[1], crop="fer2013", licence=OPEN_LICENCE,
                         paper=POSTER_V2_PAPER, origin_url="https://github.com/ferkit/ferkit", metrics=metrics,
                         notes=OPEN_NOTE, packaged=OPEN_FILE, head=head, sources=OPEN_SOURCES,
                         recipe="configs/poster_v2_open_ferplus.yaml")


#: ``ferkit.load()`` / ``ferkit predict`` without a model use this.
DEFAULT_MODEL = "poster_v2_open.ferplus"

PRETRAINED: dict[str, PretrainedCfg] = {c.name: c for c in (
    _open("ferplus", "ferplus", "main", {"top1": 85.11, "mean_class": 62.25}),  # FER+ Valid, majority rule
    _open("fer2013", "fer2013", "aux", {"top1": 64.64, "mean_class": 57.35}),  # FER2013 PublicTest, all 3,589
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
