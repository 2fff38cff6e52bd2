"""One optimiser step over a list of micro-batches: mixed precision, gradient accumulation, DDP, SAM.

Micro-batch losses are weighted by their share of the step's images, so accumulating k micro-batches gives the
gradient of one batch of their total size. With SAM both passes run over the same micro-batches; the reported loss
and accuracy come from the first pass only (the official POSTER++ code averages both passes — a logging bug).
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from ferkit.device import autocast, resolve_precision
from ferkit.train.optim import SAM


class TrainForward(nn.Module):
    """``forward(images, targets) -> (loss, logits, parts)``: the model's own ``training_loss`` when it has one
    (e.g. MPA-FER's CE + alignment terms), else cross-entropy on its logits. DDP wraps this module."""

    def __init__(self, model: nn.Module, label_smoothing: float = 0.0):
        super().__init__()
        self.model = model
        self.label_smoothing = label_smoothing
        hook = getattr(model, "training_loss", None)
        self._hook_smooths = callable(hook) and "label_smoothing" in inspect.signature(hook).parameters

    def forward(self, images: torch.Tensor, targets: torch.Tensor):
        """``targets``: class indices (B,) or class probabilities (B, K) (soft labels, e.g. FERPlus votes)."""
        hook = getattr(self.model, "training_loss", None)
        if callable(hook):
            kwargs = {"label_smoothing": self.label_smoothing} if self._hook_smooths else {}
            loss, logits, parts = hook(images, targets, **kwargs)
            return loss, logits, dict(parts or {})
        logits = self.model(images)
        return F.cross_entropy(_full(logits), targets, label_smoothing=self.label_smoothing), logits, {}


def _full(t: torch.Tensor) -> torch.Tensor:
    """float32 for half-precision tensors (losses are computed and scaled in float32), unchanged otherwise."""
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


@dataclass
class StepStats:
    """First-pass sums over one step's images (this process only)."""

    loss_sum: float = 0.0
    correct: int = 0
    count: int = 0
    parts: dict[str, float] = field(default_factory=dict)
    skipped: bool = False

    def add(self, loss: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor, parts: dict) -> None:
        n = len(targets)
        self.loss_sum += float(loss.detach()) * n
        if targets.ndim == 2:  # soft targets (and auxiliary columns): the most probable main class counts
            targets = targets[:, : logits.shape[1]].argmax(1)
        self.correct += int((logits.detach().argmax(1) == targets).sum())
        self.count += n
        for k, v in parts.items():
            self.parts[k] = self.parts.get(k, 0.0) + float(v.detach() if torch.is_tensor(v) else v) * n


class StepRunner:
    """Runs optimiser steps for a (possibly DDP-wrapped) :class:`TrainForward`.

    ``precision`` follows :func:`ferkit.device.resolve_precision`: fp16 on the CPU raises ``ConfigError`` unless
    ``allow_cpu_fp16=True`` (for exercising loss scaling without a GPU).
    """

    def __init__(self, forward: nn.Module, optimizer: torch.optim.Optimizer, *, device: torch.device,
                 precision: str = "fp32", sam: SAM | None = None, grad_clip: float | None = None,
                 channels_last: bool = False, allow_cpu_fp16: bool = False):
        self.forward, self.optimizer, self.sam = forward, optimizer, sam
        precision = resolve_precision(precision, device, allow_cpu_fp16=allow_cpu_fp16)
        self.device, self.precision, self.grad_clip, self.channels_last = device, precision, grad_clip, channels_last
        self.allow_cpu_fp16 = allow_cpu_fp16
        self.scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
        self.params = [p for g in optimizer.param_groups for p in g["params"]]

    def __call__(self, batches: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> StepStats:
        batches = [self._to_device(x, y) for x, y in batches]
        total = sum(len(y) for _, y in batches)
        self.optimizer.zero_grad(set_to_none=True)
        stats = self._accumulate(batches, total, record=True)
        if self.sam is not None:
            norm = self.sam.grad_norm()
            if self.scaler.is_enabled() and not torch.isfinite(norm):
                return self._skip(stats)  # fp16 overflow in the first pass: no step, smaller loss scale
            self.sam.perturb()
            self.optimizer.zero_grad(set_to_none=True)
            self._accumulate(batches, total, record=False)
            self.sam.restore()
        self._apply()
        return stats

    def _to_device(self, x: torch.Tensor, y: torch.Tensor):
        x = x.to(self.device, non_blocking=True)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        y = y.to(self.device, non_blocking=True)
        return x, (y.float() if y.is_floating_point() else y.long())

    def _accumulate(self, batches, total: int, record: bool) -> StepStats:
        stats = StepStats()
        ddp = isinstance(self.forward, DistributedDataParallel)
        for i, (x, y) in enumerate(batches):
            last = i == len(batches) - 1
            with self.forward.no_sync() if ddp and not last else contextlib.nullcontext():
                with autocast(self.device, self.precision, allow_cpu_fp16=self.allow_cpu_fp16):
                    loss, logits, parts = self.forward(x, y)
                self.scaler.scale(_full(loss) * (len(y) / total)).backward()
            if record:
                stats.add(loss, logits, y, parts)
        return stats

    def _apply(self) -> None:
        if self.grad_clip is not None:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.params, self.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)

    def _skip(self, stats: StepStats) -> StepStats:
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.update(self.scaler.get_scale() * self.scaler.get_backoff_factor())
        stats.skipped = True
        return stats
