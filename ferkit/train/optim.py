"""Optimisers: Adam / AdamW / SGD, optionally wrapped in SAM (sharpness-aware minimisation, Foret et al., ICLR 2021).

SAM step as the official POSTER++ code performs it (docs/poster_v2.md#r5-training-recipe-and-sam-step): gradient g
at w -> e = rho * g / (||g||_2 + 1e-12) -> w + e -> gradient at w + e -> restore w -> base optimiser step with that
second gradient. ``adaptive=True`` gives ASAM (Kwon et al. 2021): the norm and e are taken elementwise-scaled by |w|
(e = rho * w^2 g / ||w g||).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from ferkit.train.config import OptimSection


def build_optimizer(params: Iterable[nn.Parameter] | Iterable[dict], cfg: OptimSection) -> torch.optim.Optimizer:
    """The base optimiser of ``cfg`` over ``params`` (tensors, or parameter-group dicts that may carry an
    ``lr_scale``; SAM, if requested, wraps it separately: :class:`SAM`)."""
    params = list(params)
    groups = params if params and isinstance(params[0], dict) else [{"params": params}]
    params = [g for g in groups if g["params"]]
    if not params:
        raise ValueError("the model has no trainable parameters")
    for g in params:
        g["lr"] = cfg.lr * g.get("lr_scale", 1.0)
    if cfg.name == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps, weight_decay=cfg.weight_decay)
    if cfg.name == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
                           nesterov=cfg.nesterov)


class SAM:
    """Perturb / restore around a base optimiser's step. The base optimiser keeps all optimisation state.

    Usage per batch::

        loss(x).backward(); sam.perturb(); opt.zero_grad()
        loss(x).backward(); sam.restore(); opt.step(); opt.zero_grad()
    """

    def __init__(self, base: torch.optim.Optimizer, rho: float = 0.05, adaptive: bool = False):
        if rho <= 0:
            raise ValueError(f"SAM rho must be > 0, got {rho}")
        self.base, self.rho, self.adaptive = base, float(rho), bool(adaptive)
        self._old: dict[nn.Parameter, torch.Tensor] = {}

    def _params_with_grad(self) -> list[nn.Parameter]:
        return [p for g in self.base.param_groups for p in g["params"] if p.grad is not None]

    @torch.no_grad()
    def grad_norm(self) -> torch.Tensor:
        """||g||_2 over every parameter with a gradient (scaled by |w| for ASAM). Returns a 0-d tensor."""
        params = self._params_with_grad()
        if not params:
            return torch.zeros(())
        norms = [((p.abs() if self.adaptive else 1.0) * p.grad).norm(2).float() for p in params]
        device = norms[0].device
        return torch.stack([n.to(device) for n in norms]).norm(2)

    @torch.no_grad()
    def perturb(self) -> torch.Tensor:
        """Move every parameter with a gradient to ``w + e``; returns the gradient norm used."""
        norm = self.grad_norm()
        scale = self.rho / (norm + 1e-12)
        for p in self._params_with_grad():
            e = (p.pow(2) if self.adaptive else 1.0) * p.grad * scale.to(p.device, p.dtype)
            self._old[p] = p.detach().clone()
            p.add_(e)
        return norm

    @torch.no_grad()
    def restore(self) -> None:
        """Put back the weights saved by :meth:`perturb` (exact copies, not ``w + e - e``)."""
        for p, old in self._old.items():
            p.copy_(old)
        self._old.clear()
