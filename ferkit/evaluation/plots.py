"""Figures: confusion matrices (counts and row-normalised), training curves, t-SNE of features. Matplotlib (Agg)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np


def _pyplot():
    try:
        import matplotlib
    except ImportError as e:  # pragma: no cover - depends on the install
        raise ImportError("plots need matplotlib: pip install 'ferkit[train]'") from e
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | os.PathLike) -> Path:
    from ferkit.checkpoint import atomic_write_bytes

    atomic_write_bytes(path, lambda f: fig.savefig(f, format="png", dpi=120, bbox_inches="tight"))
    _pyplot().close(fig)
    return Path(path)


def plot_confusion(cm: Sequence[Sequence[int]], label_names: Sequence[str], path: str | os.PathLike, *,
                   normalize: bool = False, title: str = "") -> Path:
    """Heat map with the value in every cell. ``normalize`` divides each row by its total (rows without samples
    stay empty). Rows = true class, columns = predicted class."""
    plt = _pyplot()
    m = np.asarray(cm, dtype=float)
    if normalize:
        totals = m.sum(1, keepdims=True)
        m = np.divide(m, totals, out=np.full_like(m, np.nan), where=totals > 0)
    k = len(label_names)
    fig, ax = plt.subplots(figsize=(1.0 + 0.75 * k, 0.8 + 0.7 * k))
    im = ax.imshow(np.nan_to_num(m), cmap="Blues", vmin=0, vmax=1 if normalize else None)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    top = np.nanmax(m) if np.isfinite(m).any() else 1
    for i in range(k):
        for j in range(k):
            if np.isnan(m[i, j]):
                continue
            text = f"{m[i, j]:.2f}" if normalize else f"{int(m[i, j])}"
            ax.text(j, i, text, ha="center", va="center", fontsize=8,
                    color="white" if m[i, j] > 0.6 * top else "black")
    ax.set_xticks(range(k), label_names, rotation=45, ha="right")
    ax.set_yticks(range(k), label_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or ("confusion matrix (row-normalised)" if normalize else "confusion matrix (counts)"))
    return _save(fig, path)


def plot_curves(history: Sequence[Mapping[str, Any]], path: str | os.PathLike, *, title: str = "") -> Path:
    """Loss and accuracy per epoch, train and validation, side by side (as in the POSTER++ appendix figures)."""
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    epochs = [h["epoch"] for h in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, key, label in ((ax_loss, "loss", "loss"), (ax_acc, "accuracy", "accuracy (%)")):
        for split, style in (("train", "-o"), ("val", "-s")):
            values = [h.get(f"{split}_{key}") for h in history]
            pts = [(e, v * (100 if key == "accuracy" else 1)) for e, v in zip(epochs, values) if v is not None]
            if pts:
                ax.plot(*zip(*pts), style, markersize=3, label=split)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_tsne(features: np.ndarray, targets: np.ndarray, label_names: Sequence[str], path: str | os.PathLike, *,
              seed: int = 0, title: str = "") -> Path:
    """2-D t-SNE (scikit-learn) of ``features`` (N, F), one colour per true class."""
    try:
        from sklearn.manifold import TSNE
    except ImportError as e:  # pragma: no cover - depends on the install
        raise ImportError("t-SNE needs scikit-learn: pip install 'ferkit[train]'") from e
    plt = _pyplot()
    n = len(features)
    emb = TSNE(n_components=2, perplexity=min(30.0, max(2.0, (n - 1) / 3)), init="pca", random_state=seed,
               ).fit_transform(np.asarray(features, dtype=np.float32))
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    cmap = plt.get_cmap("tab10")
    for k, name in enumerate(label_names):
        sel = targets == k
        if sel.any():
            ax.scatter(emb[sel, 0], emb[sel, 1], s=6, color=cmap(k % 10), label=f"{name} ({int(sel.sum())})")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(markerscale=2, fontsize=8, loc="best")
    ax.set_title(title or f"t-SNE of the features before the head ({n} samples)")
    return _save(fig, path)


def plot_reliability(rel: Any, path: str | os.PathLike, *, title: str = "") -> Path:
    """Reliability diagram of a :class:`ferkit.evaluation.calibration.Reliability`: accuracy per confidence bin
    against the diagonal, with the share of samples per bin underneath."""
    plt = _pyplot()
    fig, (ax, hx) = plt.subplots(2, 1, figsize=(4.2, 5.0), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    centres = (rel.edges[:-1] + rel.edges[1:]) / 2
    width = rel.edges[1] - rel.edges[0]
    ax.bar(centres, np.nan_to_num(rel.accuracy), width=width, edgecolor="k", alpha=0.8, label="accuracy")
    ax.plot([0, 1], [0, 1], "--", color="gray", label="perfect calibration")
    ax.set_ylabel("accuracy")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title(title or f"reliability (ECE {100 * rel.ece:.1f} %)")
    hx.bar(centres, rel.counts / max(rel.counts.sum(), 1), width=width, edgecolor="k", color="gray")
    hx.set_xlabel("confidence")
    hx.set_ylabel("share")
    return _save(fig, path)
