"""MobileFaceNet 68-point landmark regressor (112x112 input), the frozen landmark stream of POSTER++.

Submodule names follow the public ``mobilefacenet_model_best.pth.tar`` file (POSTER / POSTER_V2, py-feat), so that file
loads strictly. POSTER++ uses three intermediate maps; the GDC head (``output_layer``) only runs in :meth:`landmarks`.
"""

from __future__ import annotations

import torch
from torch import nn


class ConvBlock(nn.Module):
    """Conv (no bias) -> BN -> PReLU."""

    _conv_bn_pairs = (("conv", "bn"),)

    def __init__(self, in_c: int, out_c: int, kernel: int = 1, stride: int = 1, padding: int = 0, groups: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(in_c, out_c, kernel, stride, padding, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(out_c)
        self.prelu = nn.PReLU(out_c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.prelu(self.bn(self.conv(x)))


class LinearBlock(nn.Module):
    """Conv (no bias) -> BN, no activation."""

    _conv_bn_pairs = (("conv", "bn"),)

    def __init__(self, in_c: int, out_c: int, kernel: int = 1, stride: int = 1, padding: int = 0, groups: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(in_c, out_c, kernel, stride, padding, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(out_c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


class DepthWise(nn.Module):
    """Inverted bottleneck: 1x1 expand to ``groups`` -> 3x3 depthwise (stride) -> 1x1 project (+ input if residual)."""

    def __init__(self, in_c: int, out_c: int, groups: int, stride: int = 2, residual: bool = False):
        super().__init__()
        self.conv = ConvBlock(in_c, groups)
        self.conv_dw = ConvBlock(groups, groups, 3, stride, 1, groups=groups)
        self.project = LinearBlock(groups, out_c)
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.conv_dw(self.conv(x)))
        return x + y if self.residual else y


class Residual(nn.Module):
    """``n`` residual :class:`DepthWise` units at constant width."""

    def __init__(self, c: int, n: int, groups: int):
        super().__init__()
        self.model = nn.Sequential(*[DepthWise(c, c, groups, stride=1, residual=True) for _ in range(n)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class GDC(nn.Module):
    """Global depthwise conv head: 7x7 depthwise -> flatten -> Linear(512, 136) -> BN1d."""

    def __init__(self, num_outputs: int = 136):
        super().__init__()
        self.conv_6_dw = LinearBlock(512, 512, 7, groups=512)
        self.linear = nn.Linear(512, num_outputs, bias=False)
        self.bn = nn.BatchNorm1d(num_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.linear(self.conv_6_dw(x).flatten(1)))


class MobileFaceNet(nn.Module):
    """Landmark backbone. ``forward`` returns the maps POSTER++ uses.

    Shapes for a (B, 3, 112, 112) input: (B, 64, 28, 28), (B, 128, 14, 14), (B, 512, 7, 7).
    """

    def __init__(self, num_outputs: int = 136):
        super().__init__()
        self.conv1 = ConvBlock(3, 64, 3, 2, 1)
        self.conv2_dw = ConvBlock(64, 64, 3, 1, 1, groups=64)
        self.conv_23 = DepthWise(64, 64, groups=128)
        self.conv_3 = Residual(64, 4, groups=128)
        self.conv_34 = DepthWise(64, 128, groups=256)
        self.conv_4 = Residual(128, 6, groups=256)
        self.conv_45 = DepthWise(128, 128, groups=512)
        self.conv_5 = Residual(128, 2, groups=256)
        self.conv_6_sep = ConvBlock(128, 512)
        self.output_layer = GDC(num_outputs)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.conv_23(self.conv2_dw(self.conv1(x)))
        f3 = self.conv_3(x)  # (B, 64, 28, 28)
        f4 = self.conv_4(self.conv_34(f3))  # (B, 128, 14, 14)
        f5 = self.conv_6_sep(self.conv_5(self.conv_45(f4)))  # (B, 512, 7, 7)
        return f3, f4, f5

    def landmarks(self, x: torch.Tensor) -> torch.Tensor:
        """The regressor's own output (B, 136) = 68 (x, y) pairs, for a 112x112 input."""
        return self.output_layer(self.forward(x)[2])
