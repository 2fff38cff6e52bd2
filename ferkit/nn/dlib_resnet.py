"""dlib's face-recognition ResNet (``dlib_face_recognition_resnet_model_v1``) in PyTorch.

The network of dlib's ``dnn_face_recognition_ex.cpp``: a 7x7 stride-2 stem and a 3x3 stride-2 max-pool, then four
residual levels of 32 / 64 / 128 / 256 channels (3 / 4 / 3 / 3 blocks) and one more 256-channel down block, global
average pooling and a 128-D linear embedding. dlib's semantics are reproduced exactly:

* strided convolutions and poolings have **no padding** (dlib's default for stride != 1), 3x3 stride-1 convolutions
  pad by 1; output side ``1 + (n + 2p - k) // s``;
* BatchNorm is frozen into a per-channel ``Affine`` (``y = gamma * x + beta``), kept trainable when fine-tuning;
* a down block adds its stride-2 branch to a 2x2 average-pooled shortcut whose channels (and, for even sides, one
  row and column) the branch has more (fewer): dlib's ``add_prev`` sums tensors of different sizes into the larger
  shape, missing values counting as zero (top-left aligned);
* the input is RGB in 0..255 minus dlib's mean (122.782, 117.001, 104.298), divided by 256.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ferkit.constants import DLIB_MEAN, DLIB_SCALE

#: (channels, blocks, first block downsamples) per residual level, input to output.
LEVELS = ((32, 3, False), (64, 4, True), (128, 3, True), (256, 3, True), (256, 1, True))


class Affine(nn.Module):
    """Per-channel ``gamma * x + beta`` (dlib's ``affine`` layer: BatchNorm frozen after training)."""

    def __init__(self, channels: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(self.bias.view(1, -1, 1, 1), x, self.weight.view(1, -1, 1, 1))


def add_prev(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib's ``add_prev``: sum of two (B, C, H, W) maps of possibly different C/H/W into the larger shape, values
    outside the smaller tensor counting as zero (top-left aligned)."""
    if a.shape == b.shape:
        return a + b
    shape = [max(x, y) for x, y in zip(a.shape, b.shape)]

    def grow(t: torch.Tensor) -> torch.Tensor:
        pad = (0, shape[3] - t.shape[3], 0, shape[2] - t.shape[2], 0, shape[1] - t.shape[1])
        return F.pad(t, pad) if any(pad) else t

    return grow(a) + grow(b)


class ResBlock(nn.Module):
    """``relu(add_prev(affine(conv(relu(affine(conv(x))))), shortcut(x)))``; the down version strides its first
    conv by 2 without padding and average-pools the shortcut 2x2."""

    def __init__(self, in_c: int, out_c: int, down: bool):
        super().__init__()
        self.down = down
        self.conv1 = nn.Conv2d(in_c, out_c, 3, 2 if down else 1, 0 if down else 1)
        self.bn1 = Affine(out_c)
        self.conv2 = nn.Conv2d(out_c, out_c, 3, 1, 1)
        self.bn2 = Affine(out_c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        skip = F.avg_pool2d(x, 2, 2) if self.down else x
        return F.relu(add_prev(y, skip))


class DlibResNet(nn.Module):
    """dlib's face-recognition ResNet (5.6M parameters).

    Input: (B, 3, H, W) RGB preprocessed by :meth:`preprocess` (150x150 aligned chips for the descriptor; any size
    >= 67 for :meth:`features`). :meth:`features` returns the level outputs; :meth:`forward` the 128-D descriptor.
    ``num_levels`` < 5 with ``embedding=False`` builds only the first levels (a truncated backbone).
    At 150 px the levels are 35, 17, 8, 4, 2 px wide; at 224 px 54, 27, 13, 6, 3.
    """

    def __init__(self, num_levels: int = 5, embedding: bool = True):
        super().__init__()
        if embedding and num_levels != len(LEVELS):
            raise ValueError("the 128-D embedding needs all 5 levels")
        self.conv1 = nn.Conv2d(3, 32, 7, 2, 0)
        self.bn1 = Affine(32)
        in_c = 32
        levels = []
        for out_c, blocks, down in LEVELS[:num_levels]:
            levels.append(nn.Sequential(*[ResBlock(in_c if i == 0 else out_c, out_c, down and i == 0)
                                          for i in range(blocks)]))
            in_c = out_c
        self.levels = nn.ModuleList(levels)
        self.fc = nn.Linear(256, 128, bias=False) if embedding else None
        self.register_buffer("mean", torch.tensor(DLIB_MEAN).view(1, 3, 1, 1), persistent=False)

    def preprocess(self, rgb255: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) RGB in 0..255 -> dlib's normalised input."""
        return (rgb255 - self.mean) / DLIB_SCALE

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, 32, H', W'), H' = 1 + (1 + (H - 7) // 2 - 3) // 2."""
        return F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2)

    def features(self, x: torch.Tensor, upto: int = 5) -> list[torch.Tensor]:
        """Outputs of the first ``upto`` levels: (B, 32, s4), (B, 64, s8), (B, 128, s16), (B, 256, s32),
        (B, 256, s64)."""
        out, x = [], self.stem(x)
        for level in self.levels[:upto]:
            x = level(x)
            out.append(x)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) preprocessed -> (B, 128) face descriptor (dlib's ``compute_face_descriptor``)."""
        if self.fc is None:
            raise RuntimeError("this DlibResNet was built without its embedding (embedding=False)")
        return self.fc(self.features(x)[-1].mean((2, 3)))
