"""A few-KB test-only model implementing the ferkit model contract, for fast engine tests.

Registered as ``tiny_fer`` when imported (also as a config ``plugins`` entry: ``tests/_tiny_fer_model.py``).
``aux_loss=True`` adds a ``training_loss`` hook (CE + a small feature penalty) like MPA-FER's multi-term loss.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ferkit.config import apply_overrides
from ferkit.labels import DATASET_ORDERS
from ferkit.models import list_models, register_model
from ferkit.models.base import FerModel


@dataclass(frozen=True)
class TinyConfig:
    width: int = 8
    input_size: int = 16
    dropout: float = 0.1
    aux_loss: bool = False
    bn: bool = True


class TinyFer(FerModel):
    """conv-BN-ReLU-pool-conv-ReLU-GAP -> dropout -> linear. Input (B, 3, S, S)."""

    def __init__(self, cfg: TinyConfig, label_names=None, num_classes=None):
        super().__init__()
        self.config = cfg
        self._set_labels(label_names, num_classes, DATASET_ORDERS["fer2013"])
        self.model_name = "tiny_fer"
        self.data_config = {"input_size": cfg.input_size, "mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5),
                            "interpolation": "bilinear", "family": "poster_v2"}
        w = cfg.width
        norm = nn.BatchNorm2d(w) if cfg.bn else nn.Identity()
        self.body = nn.Sequential(nn.Conv2d(3, w, 3, padding=1), norm, nn.ReLU(), nn.MaxPool2d(2),
                                  nn.Conv2d(w, 2 * w, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(2 * w, self.num_classes)
        self.num_features = 2 * w

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward_head(self, f: torch.Tensor) -> torch.Tensor:
        return self.head(self.drop(f))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def training_loss(self, images, targets):
        if not self.config.aux_loss:  # behave as if the hook were absent
            logits = self(images)
            return F.cross_entropy(logits, targets), logits, {}
        f = self.forward_features(images)
        logits = self.forward_head(f)
        ce = F.cross_entropy(logits, targets)
        aux = 1e-3 * f.pow(2).mean()
        return ce + aux, logits, {"ce": ce.detach(), "aux": aux.item()}


def build_tiny(*, label_names=None, num_classes=None, trust_checkpoint=False, **overrides):
    return TinyFer(apply_overrides(TinyConfig(), overrides), label_names=label_names, num_classes=num_classes)


if "tiny_fer" not in list_models():
    register_model("tiny_fer", family="tiny", builder=build_tiny,
                   description="test-only tiny CNN")
