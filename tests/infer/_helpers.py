"""Helpers shared by the inference tests (``from tests.infer._helpers import ...``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ferkit.detect.base import Face


class StubDetector:
    """Returns the same faces for every image (boxes in pixels)."""

    name = "stub"

    def __init__(self, *boxes, landmarks=None):
        self.faces = [Face(box=tuple(map(float, b)), score=0.9 - 0.1 * i, landmarks=landmarks)
                      for i, b in enumerate(boxes)]
        self.calls = 0

    def detect(self, image: np.ndarray) -> list[Face]:
        self.calls += 1
        return list(self.faces)


def fer_files(root: Path, n: int = 3) -> list[Path]:
    """The first ``n`` FER2013 validation faces of different classes (sorted, deterministic)."""
    out = []
    for cls in ("happiness", "surprise", "anger", "sadness", "neutral", "fear", "disgust"):
        out.append(sorted((root / "val" / cls).glob("*.jpg"))[0])
        if len(out) == n:
            break
    return out


# ---- a tiny registered model so that most tests (and CLI runs) do not pay for POSTER++ forwards ----------------------
import dataclasses  # noqa: E402

import torch  # noqa: E402
from torch import nn  # noqa: E402

from ferkit.labels import DATASET_ORDERS  # noqa: E402
from ferkit.models.base import FerModel  # noqa: E402

TINY = "tiny_fer_test"


@dataclasses.dataclass(frozen=True)
class TinyConfig:
    width: int = 8


class TinyFer(FerModel):
    """Conv + BatchNorm + linear head on 224x224 ImageNet-normalised input (POSTER++'s data config)."""

    def __init__(self, label_names=None, num_classes=None, width: int = 8):
        super().__init__()
        self.config = TinyConfig(width)
        self._set_labels(label_names, num_classes, DATASET_ORDERS["rafdb"])
        self.model_name = TINY
        self.data_config = {"input_size": 224, "mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225),
                            "interpolation": "bilinear", "family": "poster_v2"}
        self.body = nn.Sequential(nn.Conv2d(3, width, 8, stride=8), nn.BatchNorm2d(width), nn.ReLU(),
                                  nn.AdaptiveAvgPool2d(4), nn.Flatten())
        self.head = nn.Linear(16 * width, self.num_classes)
        with torch.no_grad():  # non-trivial BatchNorm statistics, so that folding them is exercised
            bn = self.body[1]
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
            self.head.weight.mul_(20)

    def forward(self, x):
        return self.head(self.body(x))


class TinyAdapter:
    def inspect(self, ckpt):
        names = ckpt.get("label_names")
        return {"format": ckpt.get("format"), "model": ckpt.get("model"), "model_args": ckpt.get("model_args") or {},
                "label_names": names, "num_classes": None if names is None else len(names)}

    def load(self, model, ckpt, *, reset_head=False):
        model.load_state_dict(ckpt["state_dict"])
        return {"tensors": len(ckpt["state_dict"])}


def register_tiny() -> None:
    from ferkit.models import list_models, register_model

    if TINY not in list_models():
        register_model(TINY, family="tiny_test", adapter=TinyAdapter(), description="test stand-in",
                       builder=lambda label_names=None, num_classes=None, trust_checkpoint=False, **kw:
                       TinyFer(label_names, num_classes, **kw))
