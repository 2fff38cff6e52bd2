"""``evaluate``: a model on a data set -> metrics report (JSON), per-class table, confusion PNGs, optional t-SNE."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Subset

from ferkit.checkpoint import atomic_write_bytes
from ferkit.device import resolve_precision
from ferkit.evaluation.runner import label_map, predict, score

log = logging.getLogger(__name__)

REPORT_FORMAT = "ferkit.eval/1"


def evaluate(model: nn.Module, dataset: Any, *, batch_size: int = 64, device: str | torch.device = "cpu",
             num_workers: int = 0, precision: str = "fp32", features: bool = False, channels_last: bool = False,
             progress: bool = False) -> tuple[dict[str, Any], np.ndarray | None]:
    """Evaluate ``model`` on ``dataset`` (a ferkit data set with its transform set).

    Returns:
        (report, features): the report dict (:func:`write_report` saves it) and, with ``features=True``, the (N, F)
        features before the head (``None`` otherwise). Report metrics are fractions in [0, 1].
    """
    device = torch.device(device)
    precision = resolve_precision(precision, device)  # fails before any data is loaded
    lmap = label_map(model.label_names, dataset.label_names)
    targets = list(dataset.targets)
    known = [i for i, t in enumerate(targets) if lmap.index[t] is not None]
    scored = dataset if len(known) == len(targets) else Subset(dataset, known)  # never run unscorable images
    loader = DataLoader(scored, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                        pin_memory=device.type == "cuda")
    bar = _bar(len(scored), progress)
    preds = predict(model.to(device), loader, device, lmap, precision=precision, features=features,
                    channels_last=channels_last, progress=bar.update if bar else None)
    if bar:
        bar.close()
    metrics = score(preds, lmap)
    if len(known) < len(targets):
        unknown = [lmap.data_names[t] for t in targets if lmap.index[t] is None]
        metrics["excluded"] = {"samples": len(unknown), "classes": sorted(set(unknown), key=unknown.index),
                               "reason": "classes the model does not have; not scored"}
    if metrics["num_samples"] == 0:
        raise ValueError(f"nothing to score: none of the {len(dataset)} samples belongs to a class the model has "
                         f"(model: {list(lmap.model_names)}, data: {list(lmap.data_names)})")
    report = {
        "format": REPORT_FORMAT,
        "model": getattr(model, "model_name", type(model).__name__),
        "model_label_names": list(lmap.model_names),
        "dataset": {"name": getattr(dataset, "name", None), "split": getattr(dataset, "split", None),
                    "root": str(getattr(dataset, "root", "")) or None, "num_samples": len(dataset),
                    "label_names": list(lmap.data_names), "class_counts": dataset.class_counts()},
        "label_mapping": {d: (lmap.model_names[i] if i is not None else None)
                          for d, i in zip(lmap.data_names, lmap.index)},
        **metrics,
        "preprocessing": repr(getattr(dataset, "transform", None)),
        "device": str(device), "precision": precision,
        "seconds": round(preds.seconds, 3),
        "images_per_second": round(len(scored) / preds.seconds, 2) if preds.seconds > 0 else None,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    feats = preds.features.numpy() if preds.features is not None else None
    if feats is not None:
        report["_targets"] = preds.targets.tolist()  # for the t-SNE plot; dropped when written
    return report, feats


def _bar(total: int, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="img", desc="eval", leave=False, dynamic_ncols=True)


def per_class_table(report: Mapping[str, Any]) -> str:
    """Markdown table of per-class accuracy (POSTER++ Table 4 style) with the overall figures underneath."""
    def pct(v):
        return "—" if v is None else f"{100 * v:.2f}"

    lines = ["| class | samples | accuracy (%) | precision (%) | F1 (%) |", "| --- | ---: | ---: | ---: | ---: |"]
    for r in report["per_class"]:
        note = " (absent from the data)" if r["support"] == 0 else ""
        lines.append(f"| {r['class']}{note} | {r['support']} | {pct(r['accuracy'])} | {pct(r['precision'])} | "
                     f"{pct(r['f1'])} |")
    lines.append(f"| **mean class accuracy** | | **{pct(report['mean_class_accuracy'])}** | | "
                 f"**{pct(report['macro_f1'])}** (macro) |")
    lines.append(f"| **overall accuracy** | {report['num_samples']} | **{pct(report['accuracy'])}** | | |")
    return "\n".join(lines)


def write_report(report: dict[str, Any], out_dir: str | os.PathLike, *, features: np.ndarray | None = None,
                 tsne_max: int = 2000, seed: int = 0) -> dict[str, Path]:
    """Write ``report.json``, ``per_class.md``, ``confusion_counts.png``, ``confusion_normalized.png`` and, given
    ``features``, ``tsne.png`` (a class-stratified sample of at most ``tsne_max`` points). Returns the paths."""
    from ferkit.evaluation.plots import plot_confusion, plot_tsne

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    targets = np.asarray(report.pop("_targets", []), dtype=np.int64)
    names = report["model_label_names"]
    where = f"{report['dataset'].get('name')}/{report['dataset'].get('split')}"
    paths = {
        "report": out / "report.json",
        "per_class": out / "per_class.md",
        "confusion_counts": plot_confusion(report["confusion_matrix"], names, out / "confusion_counts.png",
                                           title=f"{where}: counts"),
        "confusion_normalized": plot_confusion(report["confusion_matrix"], names, out / "confusion_normalized.png",
                                               normalize=True, title=f"{where}: row-normalised"),
    }
    if features is not None and len(features):
        keep = targets >= 0
        idx = _sample(targets[keep], tsne_max, seed)
        paths["tsne"] = plot_tsne(features[keep][idx], targets[keep][idx], names, out / "tsne.png", seed=seed)
    text = json.dumps(report, indent=2)
    atomic_write_bytes(paths["report"], lambda f: f.write(text.encode()))
    atomic_write_bytes(paths["per_class"], lambda f: f.write((per_class_table(report) + "\n").encode()))
    return paths


def _sample(targets: np.ndarray, n: int, seed: int) -> np.ndarray:
    if len(targets) <= n:
        return np.arange(len(targets))
    from ferkit.data.subsets import stratified_indices

    return np.asarray(stratified_indices(targets.tolist(), n, seed))
