"""IR-50 (ArcFace-style improved residual network), first three stages, the image stream of POSTER++.

Submodule names follow the ``body1/body2/body3`` layout POSTER_V2 loads ``ir50.pth`` into. Stage 4 and the
embedding head of the face-recognition network are not built (POSTER++ never calls them).
"""

from __future__ import annotations

import torch
from torch import nn


class Subsample(nn.Module):
    """Keep every ``stride``-th pixel: exactly ``MaxPool2d(kernel_size=1, stride)`` (the official shortcut), faster."""

    def __init__(self, stride: int):
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.stride == 1 else x[:, :, :: self.stride, :: self.stride]


class BottleneckIR(nn.Module):
    """BN -> conv3x3 -> PReLU -> conv3x3 (stride) -> BN, plus a shortcut; no activation after the sum."""

    def __init__(self, in_c: int, depth: int, stride: int):
        super().__init__()
        self.res_layer = nn.Sequential(
            nn.BatchNorm2d(in_c),
            nn.Conv2d(in_c, depth, 3, 1, 1, bias=False),
            nn.PReLU(depth),
            nn.Conv2d(depth, depth, 3, stride, 1, bias=False),
            nn.BatchNorm2d(depth),
        )
        if in_c == depth:  # pure subsampling, no parameters
            self.shortcut_layer: nn.Module = Subsample(stride)
        else:
            self.shortcut_layer = nn.Sequential(nn.Conv2d(in_c, depth, 1, stride, bias=False), nn.BatchNorm2d(depth))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.res_layer(x) + self.shortcut_layer(x)


def _stage(in_c: int, depth: int, units: int) -> nn.Sequential:
    return nn.Sequential(BottleneckIR(in_c, depth, 2), *[BottleneckIR(depth, depth, 1) for _ in range(units - 1)])


class IR50(nn.Module):
    """Stages 1-3 of IR-50 (3 + 4 + 14 units).

    Shapes for a (B, 3, 112, 112) input: (B, 64, 56, 56), (B, 128, 28, 28), (B, 256, 14, 14).
    """

    def __init__(self):
        super().__init__()
        self.input_layer = nn.Sequential(nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.PReLU(64))
        self.body1 = _stage(64, 64, 3)
        self.body2 = _stage(64, 128, 4)
        self.body3 = _stage(128, 256, 14)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x1 = self.body1(self.input_layer(x))
        x2 = self.body2(x1)
        return x1, x2, self.body3(x2)
