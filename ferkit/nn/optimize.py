"""Inference-only speed-ups that keep the output (to float rounding): BatchNorm folding and channels-last layout."""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval


def fold_batchnorm_(model: nn.Module) -> int:
    """Fold every eval-mode BatchNorm2d that directly follows a Conv2d into the conv, in place. Returns the count.

    Pairs are found in ``nn.Sequential`` children and in modules that declare ``_conv_bn_pairs``.
    """
    n = 0
    for module in model.modules():
        if isinstance(module, nn.Sequential):
            names = list(module._modules)
            for a, b in zip(names, names[1:]):
                conv, bn = module._modules[a], module._modules[b]
                if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                    module._modules[a] = fuse_conv_bn_eval(conv, bn)
                    module._modules[b] = nn.Identity()
                    n += 1
        for conv_name, bn_name in getattr(module, "_conv_bn_pairs", ()):
            conv, bn = getattr(module, conv_name), getattr(module, bn_name)
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                setattr(module, conv_name, fuse_conv_bn_eval(conv, bn))
                setattr(module, bn_name, nn.Identity())
                n += 1
    return n


def for_inference(model: nn.Module, *, fold_bn: bool = True, channels_last: bool = True) -> nn.Module:
    """Eval-mode copy of ``model`` prepared for fast CPU/GPU inference. The original is left untouched.

    The copy has no gradients, folded BatchNorms and channels-last weights; its state dict no longer matches the
    training layout, so save and load the original.
    """
    m = copy.deepcopy(model).eval().requires_grad_(False)
    if fold_bn:
        fold_batchnorm_(m)
    return to_channels_last(m) if channels_last else m


def to_channels_last(model: nn.Module) -> nn.Module:
    """Channels-last weights, and ``model.memory_format`` (which ferkit models give their convolution input) set to
    match; in place, returns ``model``."""
    model = model.to(memory_format=torch.channels_last)
    model.memory_format = torch.channels_last
    return model
