"""A model family and a data set added from outside ferkit: one module, no edit of ferkit's own files.

Importing this module (or naming it in a run config's ``plugins`` / ``--plugin``) registers:

* family ``toy`` with its own training transforms (grey, no flip, no erasing, nearest resize);
* model ``toy_attention``: conv -> spatial softmax attention pooling -> linear, which also answers
  ``attention_maps`` (so ``explain(method="auto")`` shows its attention, as POSTER++ does);
* no checkpoint adapter: ferkit's default reads the model's own checkpoints strictly;
* data set ``toy_folder``: a class-folder tree (``train/``, ``val/``), read by ferkit's generic folder reader.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ferkit.config import apply_overrides
from ferkit.data.registry import DatasetSpec, build_dataset, list_datasets, register_dataset
from ferkit.labels import DATASET_ORDERS
from ferkit.models import FerModel, list_families, list_models, register_family, register_model

TRANSFORMS = {"grayscale": True, "hflip": 0.0, "erasing_p": 0.0, "interpolation": "nearest"}


@dataclass(frozen=True)
class ToyConfig:
    width: int = 8
    input_size: int = 16


class ToyAttention(FerModel):
    """(B, 3, S, S) -> conv features (B, W, S, S) -> softmax over positions -> weighted mean -> logits (B, C)."""

    default_explanation = "attention"

    def __init__(self, cfg: ToyConfig, label_names=None, num_classes=None):
        super().__init__()
        self.config = cfg
        self._set_labels(label_names, num_classes, DATASET_ORDERS["fer2013"])
        self.data_config = {"input_size": cfg.input_size, "mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5),
                            "interpolation": "nearest", "family": "toy"}
        self.body = nn.Sequential(nn.Conv2d(3, cfg.width, 3, padding=1), nn.ReLU())
        self.score = nn.Conv2d(cfg.width, 1, 1)
        self.head = nn.Linear(cfg.width, self.num_classes)

    def _attention(self, f: torch.Tensor) -> torch.Tensor:
        return self.score(f).flatten(1).softmax(dim=1)  # (B, S*S)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.body(x)
        a = self._attention(f)
        pooled = torch.einsum("bcn,bn->bc", f.flatten(2), a)
        return self.head(pooled)

    def attention_maps(self, x: torch.Tensor) -> dict[int, torch.Tensor]:
        a = self._attention(self.body(x))
        return {0: a.view(x.shape[0], x.shape[-2], x.shape[-1])}


def build_toy(*, label_names=None, num_classes=None, trust_checkpoint=False, **overrides):
    return ToyAttention(apply_overrides(ToyConfig(), overrides), label_names=label_names, num_classes=num_classes)


def _toy_folder(root, split, **kwargs):
    return build_dataset("folder", root, split, **kwargs)


if "toy" not in list_families():
    register_family("toy", transform_defaults=lambda train, dataset: dict(TRANSFORMS),
                    description="test plugin: attention-pooling CNN")
if "toy_attention" not in list_models():
    register_model("toy_attention", family="toy", builder=build_toy, description="test plugin model")
if "toy_folder" not in list_datasets():
    register_dataset(DatasetSpec(name="toy_folder", builder=_toy_folder, splits=("train", "val"),
                                 description="test plugin data set (class folders)",
                                 layout="<root>/{train,val}/<class>/*.png"))
