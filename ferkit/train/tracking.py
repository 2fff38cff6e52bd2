"""Run outputs: per-epoch history -> ``metrics.csv`` (rewritten atomically), TensorBoard scalars, progress display."""

from __future__ import annotations

import csv
import io
import logging
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ferkit.checkpoint import atomic_write_bytes

log = logging.getLogger(__name__)

#: Leading CSV columns; any other keys of the history rows follow in first-seen order.
CSV_COLUMNS = ("epoch", "lr", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "val_mean_class_accuracy",
               "val_macro_f1", "images_per_second", "epoch_seconds")


def write_csv(history: Sequence[Mapping[str, Any]], path: str | Path) -> Path:
    """Write the whole history (one row per epoch) atomically, so a killed run never leaves a half-written file."""
    cols = [c for c in CSV_COLUMNS if any(c in h for h in history)]
    for h in history:
        cols += [k for k in h if k not in cols]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for h in history:
        writer.writerow({k: _fmt(h.get(k)) for k in cols})
    atomic_write_bytes(path, lambda f: f.write(buf.getvalue().encode()))
    return Path(path)


def _fmt(v: Any) -> Any:
    if isinstance(v, float):
        return f"{v:.6g}"
    return "" if v is None else v


class TensorBoard:
    """Thin wrapper over ``SummaryWriter``; disabled (with one warning) when tensorboard is not installed.

    ``purge_step`` drops events a killed run wrote after its last checkpoint, so a resumed run's curves do not fork.
    """

    def __init__(self, log_dir: str | Path, enabled: bool, purge_step: int | None = None):
        self.writer = None
        if not enabled:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            log.warning("tensorboard is not installed (pip install 'ferkit[train]'); TensorBoard logging is off")
            return
        self.writer = SummaryWriter(log_dir=str(log_dir), purge_step=purge_step)

    def scalars(self, values: Mapping[str, Any], step: int, prefix: str = "") -> None:
        if self.writer is None:
            return
        for k, v in values.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "epoch":
                self.writer.add_scalar(f"{prefix}{k}", v, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


class Progress:
    """Per-epoch progress: a tqdm bar (terminal) or a log line every ``log_every`` steps, with loss, accuracy and
    images per second. Only the main process displays anything."""

    def __init__(self, mode: str, total: int, epoch: int, epochs: int, log_every: int, enabled: bool = True):
        if mode == "auto":
            mode = "bar" if sys.stderr.isatty() else "log"
        self.mode = mode if enabled else "off"
        self.total, self.epoch, self.epochs, self.log_every = total, epoch, epochs, log_every
        self.start = time.perf_counter()
        self.bar = None
        if self.mode == "bar":
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=f"epoch {epoch + 1}/{epochs}", unit="step", dynamic_ncols=True,
                            leave=False)

    def update(self, step: int, loss: float, acc: float, images: int) -> None:
        """``step`` optimiser steps done this epoch; running ``loss`` / ``acc`` means; ``images`` seen (all ranks)."""
        rate = images / max(time.perf_counter() - self.start, 1e-9)
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{loss:.4f}", acc=f"{100 * acc:.2f}%", img_s=f"{rate:.1f}", refresh=False)
            self.bar.update(1)
        elif self.mode == "log" and (step % self.log_every == 0 or step == self.total):
            log.info("epoch %d/%d step %d/%d  loss %.4f  acc %.2f%%  %.1f img/s", self.epoch + 1, self.epochs, step,
                     self.total, loss, 100 * acc, rate)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
