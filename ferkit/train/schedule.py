"""Learning-rate schedules as pure functions of the fractional epoch, so a resumed run gets exactly the same rates.

Epoch ``e`` (0-based) trains at ``lr_at(e)`` when the schedule is stepped per epoch, which matches a PyTorch scheduler
stepped once after every epoch:

* ``exponential``: ``lr * gamma**e`` — ``ExponentialLR(gamma)`` as in the official POSTER++ ``main.py``.
* ``cosine``: ``min_lr + (lr - min_lr) * (1 + cos(pi * e / T)) / 2`` with ``T = cosine_epochs`` (default: all
  epochs) — ``CosineAnnealingLR(T_max=T)``.
* ``step``: ``lr * gamma**(e // step_size)``.
* warm-up (Dassl ``ConstantWarmupScheduler``, used by CoOp): epochs ``< warmup_epochs`` run at ``warmup_lr``; the
  main schedule then starts at its own epoch 0, i.e. epoch ``e`` gets ``main(e - warmup_epochs)``. With
  ``warmup_mode: linear`` the rate ramps from ``warmup_lr`` to ``main(0)`` instead.

Parameter groups may carry an ``lr_scale`` (``optim.lr_scales``): their rate is the schedule's times that factor.
"""

from __future__ import annotations

import math

from ferkit.train.config import ScheduleSection


class LRSchedule:
    """``lr_at(epoch)`` for a :class:`ScheduleSection`, a base rate and the run length."""

    def __init__(self, cfg: ScheduleSection, base_lr: float, epochs: int):
        self.cfg, self.base_lr, self.epochs = cfg, float(base_lr), int(epochs)

    def lr_at(self, epoch: float) -> float:
        """Learning rate at fractional epoch ``epoch`` (``e + i / steps_per_epoch`` for per-step schedules)."""
        cfg = self.cfg
        if cfg.interval == "epoch":
            epoch = math.floor(epoch)
        if epoch < cfg.warmup_epochs:
            if cfg.warmup_mode == "linear":  # warmup_lr -> the main schedule's first rate
                return cfg.warmup_lr + (self._main(0.0) - cfg.warmup_lr) * epoch / cfg.warmup_epochs
            return cfg.warmup_lr
        return self._main(epoch - cfg.warmup_epochs)

    def _main(self, t: float) -> float:
        cfg = self.cfg
        if cfg.name == "exponential":
            return self.base_lr * cfg.gamma ** t
        if cfg.name == "step":
            return self.base_lr * cfg.gamma ** (t // cfg.step_size)
        if cfg.name == "cosine":
            span = cfg.cosine_epochs or self.epochs
            t = min(t, span)
            return cfg.min_lr + (self.base_lr - cfg.min_lr) * (1 + math.cos(math.pi * t / span)) / 2
        return self.base_lr

    def state_dict(self) -> dict:
        return {"name": self.cfg.name, "interval": self.cfg.interval, "base_lr": self.base_lr, "epochs": self.epochs}


def set_lr(optimizer, lr: float) -> None:
    """Set every parameter group of ``optimizer`` (or a SAM wrapper's base optimiser) to ``lr`` times the group's
    ``lr_scale`` (1 when absent)."""
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)
