"""Gradient-based maps for any differentiable classifier (MPA-FER's Fig. 3 "backpropagating gradients on the input
images"), with MPA-FER's class text features held constant.

Methods (for the target class, the predicted one by default):

* ``gradient`` — |d logit / d input|, maximum over colour channels (Simonyan et al., 2014);
* ``input_x_gradient`` — |sum over channels of input * gradient| (zero wherever the normalised input is zero);
* ``gradcam`` — Grad-CAM on the patch tokens of the last vision transformer block (MPA-FER only): channel weights =
  gradients averaged over the patches, map = ReLU(sum of weighted activations) on the patch grid.
"""

from __future__ import annotations

import math

import torch
from torch import nn

METHODS = ("gradient", "input_x_gradient", "gradcam")


def classifier(model: nn.Module) -> nn.Module:
    """The function to differentiate: a ferkit model's ``exportable()`` (MPA-FER with its text features folded in
    as constants), any other module as it is."""
    from ferkit.models.base import FerModel

    return model.exportable() if isinstance(model, FerModel) else model


def gradient_map(model: nn.Module, x: torch.Tensor, target: torch.Tensor | list[int] | None = None,
                 method: str = "gradient") -> tuple[torch.Tensor, torch.Tensor]:
    """Saliency of each input for its target class.

    Args:
        model: classifier (B, 3, H, W) -> logits (B, C). x: (B, 3, H, W) normalised input.
        target: class index per image (default: the predicted class). method: one of :data:`METHODS`.

    Returns:
        maps (B, H, W) >= 0 (``gradcam``: (B, g, g) on the patch grid) and the target classes (B,).
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {METHODS}")
    net = classifier(model)
    if method == "gradcam":
        return _gradcam(net, x, target)
    x = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        logits = net(x)
        target = _targets(logits, target)
        logits.gather(1, target[:, None]).sum().backward()
    grad = x.grad.detach()
    if method == "gradient":
        return grad.abs().amax(dim=1), target
    return (grad * x.detach()).sum(dim=1).abs(), target


def _targets(logits: torch.Tensor, target: torch.Tensor | list[int] | None) -> torch.Tensor:
    if target is None:
        return logits.detach().argmax(1)
    return torch.as_tensor(target, dtype=torch.long, device=logits.device).reshape(-1)


def _gradcam(net: nn.Module, x: torch.Tensor, target) -> tuple[torch.Tensor, torch.Tensor]:
    blocks = _vision_blocks(net)
    n_tokens = 1 + _grid(net, x) ** 2  # class token + patches (visual prompts follow and are dropped)
    store = {}

    def hook(_module, _inputs, output):
        output.retain_grad()
        store["act"] = output

    handle = blocks[-1].register_forward_hook(hook)
    try:
        with torch.enable_grad():  # the input needs a gradient so that the (frozen) blocks' outputs get one
            logits = net(x.detach().clone().requires_grad_(True))
            target = _targets(logits, target)
            logits.gather(1, target[:, None]).sum().backward()
    finally:
        handle.remove()
    act, grad = store["act"], store["act"].grad
    if not getattr(_transformer(net), "batch_first", True):
        act, grad = act.transpose(0, 1), grad.transpose(0, 1)
    act, grad = act[:, 1:n_tokens].detach(), grad[:, 1:n_tokens]  # (B, N_l, W)
    cam = torch.relu((act * grad.mean(dim=1, keepdim=True)).sum(-1))  # (B, N_l)
    g = int(math.isqrt(cam.shape[1]))
    return cam.view(-1, g, g), target


def _transformer(net: nn.Module) -> nn.Module:
    model = getattr(net, "model", net)
    if not hasattr(model, "clip"):
        raise ValueError("method 'gradcam' needs a CLIP vision transformer (MPA-FER); use 'gradient' for other models")
    return model.clip.visual.transformer


def _vision_blocks(net: nn.Module) -> nn.ModuleList:
    return _transformer(net).resblocks


def _grid(net: nn.Module, x: torch.Tensor) -> int:
    conv = getattr(net, "model", net).clip.visual.conv1
    return x.shape[-1] // conv.kernel_size[0]
