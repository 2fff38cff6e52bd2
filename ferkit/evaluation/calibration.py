"""Calibration: how well predicted confidences match accuracy (Guo et al., "On Calibration of Modern Neural
Networks", ICML 2017).

Predictions are binned by confidence (the top probability) into ``n_bins`` equal-width bins over (0, 1]; a bin's
gap is |accuracy - mean confidence|; ECE is the sample-weighted mean gap, MCE the largest.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Reliability:
    """Per-bin counts, accuracy and mean confidence (NaN for empty bins), plus ECE / MCE."""

    edges: np.ndarray  # (n_bins + 1,)
    counts: np.ndarray  # (n_bins,)
    accuracy: np.ndarray  # (n_bins,)
    confidence: np.ndarray  # (n_bins,)
    ece: float
    mce: float


def reliability(probs: np.ndarray, correct: np.ndarray, n_bins: int = 15) -> Reliability:
    """``probs``: (N, K) probabilities (or (N,) confidences); ``correct``: (N,) bools, prediction right or not."""
    probs = np.asarray(probs, dtype=np.float64)
    conf = probs.max(1) if probs.ndim == 2 else probs
    correct = np.asarray(correct, dtype=bool)
    if conf.shape != correct.shape or conf.size == 0:
        raise ValueError(f"need as many confidences as outcomes (> 0), got {conf.shape} and {correct.shape}")
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.ceil(conf * n_bins).astype(int) - 1, 0, n_bins - 1)  # (lo, hi] bins; 0 joins the first
    counts = np.bincount(which, minlength=n_bins)
    hits = np.bincount(which, weights=correct.astype(float), minlength=n_bins)
    sums = np.bincount(which, weights=conf, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        acc, mean_conf = hits / counts, sums / counts
    gaps = np.abs(acc - mean_conf)
    filled = counts > 0
    ece = float((counts[filled] * gaps[filled]).sum() / counts.sum())
    return Reliability(edges, counts, acc, mean_conf, ece, float(gaps[filled].max()))

