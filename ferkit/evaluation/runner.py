"""Run a model over a data set: predictions mapped by label *name*, confusion matrix, optional features.

A data set's label order is data; a checkpoint's is part of the weights. Targets are translated to the model's
classes by name (``ferkit.labels.mapping``), so RAF-DB-ordered weights evaluate correctly on an AffectNet-ordered set.
Samples of classes the model does not know are excluded and counted; model classes the data set lacks are reported
as absent (predicting them is still an error).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ferkit import labels as _labels
from ferkit.device import autocast, resolve_precision
from ferkit.evaluation.metrics import confusion_matrix, summarize

log = logging.getLogger(__name__)


@dataclass
class LabelMap:
    """Data-set index -> model index by class name (``None`` = the model has no such class)."""

    model_names: tuple[str, ...]
    data_names: tuple[str, ...]
    index: list[int | None]

    @property
    def unknown_to_model(self) -> list[str]:
        return [n for n, i in zip(self.data_names, self.index) if i is None]

    @property
    def identity(self) -> bool:
        return list(self.index) == list(range(len(self.model_names))) and len(self.data_names) == len(self.model_names)

    def lookup(self) -> torch.Tensor:
        """(C_data,) int64 tensor of model indices, -1 for unknown classes."""
        return torch.tensor([-1 if i is None else i for i in self.index], dtype=torch.long)


def label_map(model_names: Sequence[str], data_names: Sequence[str]) -> LabelMap:
    """Build the name-based map; raises when the two label sets share no class at all."""
    model_names, data_names = _labels.order(list(model_names)), _labels.order(list(data_names))
    index = _labels.mapping(data_names, model_names)
    if all(i is None for i in index):
        raise ValueError(f"the data set's classes {list(data_names)} share no class with the model's "
                         f"{list(model_names)}")
    return LabelMap(tuple(model_names), tuple(data_names), index)


@dataclass
class Predictions:
    """Outputs of :func:`predict`, in data-set order (of the loader)."""

    targets: torch.Tensor  # (N,) model-space targets, -1 = class unknown to the model
    preds: torch.Tensor  # (N,) model-space predictions
    loss_sum: float = 0.0  # summed cross-entropy over known-class samples
    features: torch.Tensor | None = None  # (N, F) features before the head, if requested
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


def _features_and_logits(model: nn.Module, x: torch.Tensor, want_features: bool):
    if not want_features:
        return None, model(x)
    f = model.forward_features(x)
    head = getattr(model, "forward_head", None)
    return f, (head(f) if callable(head) else model(x))


@torch.no_grad()
def predict(model: nn.Module, loader, device: torch.device, lmap: LabelMap, *, precision: str = "fp32",
            features: bool = False, channels_last: bool = False, progress=None) -> Predictions:
    """Evaluate ``model`` (eval mode) on every batch of ``loader``; targets mapped to the model's classes.

    Raises:
        ConfigError: ``precision`` is unknown or fp16 on the CPU (:func:`ferkit.device.resolve_precision`).
    """
    precision = resolve_precision(precision, device)
    was_training = model.training
    model.eval()
    lookup = lmap.lookup()
    targets, preds, feats, loss_sum = [], [], [], 0.0
    start = time.perf_counter()
    for images, y in loader:
        images = images.to(device, non_blocking=True)
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with autocast(device, precision):
            f, logits = _features_and_logits(model, images, features)
        y_model = lookup[y.long()]
        known = y_model >= 0
        logits = logits.float().cpu()
        if known.any():
            loss_sum += F.cross_entropy(logits[known], y_model[known], reduction="sum").item()
        targets.append(y_model)
        preds.append(logits.argmax(1))
        if f is not None:
            feats.append(f.float().cpu())
        if progress is not None:
            progress(len(y))
    model.train(was_training)
    return Predictions(targets=torch.cat(targets) if targets else torch.zeros(0, dtype=torch.long),
                       preds=torch.cat(preds) if preds else torch.zeros(0, dtype=torch.long), loss_sum=loss_sum,
                       features=torch.cat(feats) if feats else None, seconds=time.perf_counter() - start)


def score(p: Predictions, lmap: LabelMap) -> dict[str, Any]:
    """Metrics over the known-class samples plus what was excluded or absent."""
    known = p.targets >= 0
    cm = confusion_matrix(p.targets[known], p.preds[known], len(lmap.model_names))
    out = summarize(cm, lmap.model_names)
    out["loss"] = p.loss_sum / max(int(known.sum()), 1)
    out["confusion_matrix"] = cm.tolist()
    unknown = (~known).sum().item()
    if unknown:
        names = lmap.unknown_to_model
        out["excluded"] = {"samples": int(unknown), "classes": names,
                           "reason": "classes the model does not have; not scored"}
    return out
