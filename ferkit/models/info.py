"""Model size and cost: parameter counts and multiply-accumulates (MACs).

* ``macs``: every multiply-accumulate actually executed (convolutions, linears, attention matmuls), counted by
  ``torch.utils.flop_counter`` (FLOPs / 2).
* ``macs_thop`` / ``params_thop``: counted the way ``thop.profile`` counts, which is how papers such as POSTER++ report
  "FLOPs" and "Params": per executed leaf module with a rule (conv: out x Cin/groups x k^2; linear: out x in; norms:
  2 or 4 x numel; PReLU: numel), ignoring functional ops (matmuls, softmax in ``F``) and directly owned parameters.
"""

from __future__ import annotations

import copy
import os
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ferkit.models.base import FerModel

_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.LayerNorm, nn.InstanceNorm1d, nn.InstanceNorm2d,
          nn.SyncBatchNorm)
_ZERO = (nn.ReLU, nn.ReLU6, nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AdaptiveMaxPool2d, nn.Dropout, nn.ZeroPad2d,
         nn.PixelShuffle)


def _thop_rule(m: nn.Module, x: torch.Tensor, y: torch.Tensor) -> int | None:
    """MACs thop would add for one call of leaf ``m``; None when thop has no rule for its exact type."""
    t = type(m)
    if t in (nn.Conv1d, nn.Conv2d, nn.Conv3d):
        return y.numel() * (x.shape[1] // m.groups) * int(torch.tensor(m.weight.shape[2:]).prod())
    if t is nn.Linear:
        return y.numel() * m.in_features
    if t in _NORMS:
        affine = getattr(m, "affine", False) or getattr(m, "elementwise_affine", False)
        return 2 * x.numel() * (2 if affine else 1)
    if t is nn.PReLU:
        return 0 if m.training else x.numel()
    if t is nn.Softmax:
        n = x.shape[m.dim]
        return (x.numel() // n) * (3 * n - 1)
    if t is nn.LeakyReLU or t in _ZERO or t is nn.Sequential:
        return 0
    return None


def thop_count(model: nn.Module, x: torch.Tensor) -> tuple[int, int]:
    """(MACs, params) the way ``thop.profile(model, (x,))`` counts them, without thop."""
    ops: dict[nn.Module, int] = {}
    hooks = []

    def hook(m, inp, out):
        r = _thop_rule(m, inp[0], out)
        if r is not None:
            ops[m] = ops.get(m, 0) + r

    for m in model.modules():
        if _thop_rule_exists(m):
            hooks.append(m.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(x)
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()

    def walk(module: nn.Module) -> tuple[int, int]:
        total_ops, total_params = 0, 0
        for child in module.children():
            if child in ops and not isinstance(child, (nn.Sequential, nn.ModuleList)):
                total_ops += ops[child]
                total_params += sum(p.numel() for p in child.parameters())
            else:
                o, p = walk(child)
                total_ops, total_params = total_ops + o, total_params + p
        return total_ops, total_params

    return walk(model)


def _thop_rule_exists(m: nn.Module) -> bool:
    t = type(m)
    return t in (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear, nn.PReLU, nn.Softmax, nn.LeakyReLU, nn.Sequential) \
        or t in _NORMS or t in _ZERO


def real_macs(model: nn.Module, x: torch.Tensor) -> int:
    """All executed multiply-accumulates of an eval forward (FLOP counter / 2)."""
    was_training = model.training
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)  # the fused nn.MultiheadAttention kernel is invisible to the counter
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as fc:
            model(x)
    finally:
        model.train(was_training)
        torch.backends.mha.set_fastpath_enabled(fastpath)
    return fc.get_total_flops() // 2


def effective_params(model: nn.Module, x: torch.Tensor) -> int:
    """Parameters that influence the output: non-None gradient after backward with every parameter enabled."""
    m = copy.deepcopy(model).eval()
    for p in m.parameters():
        p.requires_grad_(True)
        p.grad = None
    out = m(x)
    out = out if isinstance(out, torch.Tensor) else out[0]
    out.float().sum().backward()
    return sum(p.numel() for p in m.parameters() if p.grad is not None)


def model_info(model: nn.Module, input_size: int | None = None) -> dict[str, Any]:
    """Parameter counts and MACs of ``model`` for one (1, 3, S, S) input (S = the model's input size, 224)."""
    size = input_size or getattr(model, "data_config", {}).get("input_size", 224)
    if isinstance(model, FerModel):
        model.prepare_inference()  # e.g. MPA-FER: class text features are computed once, not per image
    x = torch.randn(1, 3, size, size)
    macs_thop, params_thop = thop_count(model, x)
    return {
        "model": getattr(model, "model_name", type(model).__name__),
        "num_classes": getattr(model, "num_classes", None),
        "label_names": list(getattr(model, "label_names", [])),
        "input_size": size,
        "params_total": sum(p.numel() for p in model.parameters()),
        "params_trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "params_effective": effective_params(model, x),
        "params_thop": params_thop,
        "macs": real_macs(model, x),
        "macs_thop": macs_thop,
    }


def describe_model(name: str, *, input_size: int | None = None, num_classes: int | None = None,
                   checkpoint: str | os.PathLike | None = None, trust_checkpoint: bool = False,
                   **overrides: Any) -> dict[str, Any]:
    """:func:`model_info` of a registered model built by ``create_model`` (what ``ferkit info NAME`` prints). The
    family's ``info_overrides`` (e.g. MPA-FER: a random CLIP, as counts do not depend on its values) are used unless
    the caller sets any of those options."""
    from ferkit.models._factory import create_model
    from ferkit.models._registry import get_entry

    extra = get_entry(name.split(".")[0]).family_spec.info_overrides
    options = dict(overrides) if set(extra) & set(overrides) else {**extra, **overrides}
    model = create_model(name, num_classes=num_classes, checkpoint=checkpoint, trust_checkpoint=trust_checkpoint,
                         **options)
    return model_info(model, input_size)
