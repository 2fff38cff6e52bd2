"""Classification metrics from a confusion matrix (rows = true class, columns = predicted class).

Classes without samples in the evaluated data (``support == 0``) have no accuracy; they are excluded from the mean
class accuracy and from macro-F1 and reported as absent, never scored as 0 or 100 %.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch


def confusion_matrix(targets: torch.Tensor, preds: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(K, K) int64 counts; ``cm[t, p]`` = samples of true class ``t`` predicted as ``p``."""
    targets, preds = targets.long().flatten().cpu(), preds.long().flatten().cpu()
    idx = targets * num_classes + preds
    return torch.bincount(idx, minlength=num_classes * num_classes).view(num_classes, num_classes)


def _ratio(num: float, den: float) -> float | None:
    return num / den if den > 0 else None


def per_class(cm: torch.Tensor, label_names: Sequence[str]) -> list[dict[str, Any]]:
    """One row per class: support, correct, predicted, accuracy (= recall), precision, F1.

    ``accuracy`` and ``f1`` are ``None`` for a class without samples, ``precision`` for a class never predicted.
    """
    cm = cm.double()
    rows = []
    for k, name in enumerate(label_names):
        tp, support, predicted = cm[k, k].item(), cm[k].sum().item(), cm[:, k].sum().item()
        f1 = 2 * tp / (support + predicted) if support > 0 else None
        rows.append({"class": name, "support": int(support), "correct": int(tp), "predicted": int(predicted),
                     "accuracy": _ratio(tp, support), "precision": _ratio(tp, predicted), "f1": f1})
    return rows


def summarize(cm: torch.Tensor, label_names: Sequence[str]) -> dict[str, Any]:
    """Accuracy, mean class accuracy and macro-F1 over the classes that have samples, plus the per-class table.

    Macro-F1 averages F1 over classes with ``support > 0`` (sklearn ``f1_score(average="macro",
    labels=<those classes>, zero_division=0)``); predictions of absent classes still count as errors.
    """
    rows = per_class(cm, label_names)
    present = [r for r in rows if r["support"] > 0]
    total = int(cm.sum().item())
    correct = int(cm.diag().sum().item())
    return {
        "num_samples": total,
        "accuracy": _ratio(correct, total),
        "mean_class_accuracy": _ratio(sum(r["accuracy"] for r in present), len(present)),
        "macro_f1": _ratio(sum(r["f1"] for r in present), len(present)),
        "absent_classes": [r["class"] for r in rows if r["support"] == 0],
        "per_class": rows,
    }
