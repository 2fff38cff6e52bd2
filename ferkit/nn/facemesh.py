"""MediaPipe FaceMesh (the 468-point face landmark network) re-implemented in PyTorch.

Architecture (channels x size at the native 192 px input; every stride-2 step halves the size)::

    stem      3x3 conv s2 + PReLU                         16 x 96 x 96
    stage1    2 BlazeBlocks                               16 x 96 x 96   (stride 2)
    stage2    BlazeBlock s2 + 2 BlazeBlocks               32 x 48 x 48   (stride 4)
    stage3    BlazeBlock s2 + 2 BlazeBlocks               64 x 24 x 24   (stride 8)   -> features()[0]
    stage4    BlazeBlock s2 + 2 BlazeBlocks              128 x 12 x 12   (stride 16)  -> features()[1]
    stage5    BlazeBlock s2 + 2 BlazeBlocks              128 x  6 x  6   (stride 32)  -> features()[2]
    landmark_head  3 BlazeBlocks (first s2) -> 1x1 conv 128->32 + PReLU -> BlazeBlock -> 3x3/s3 conv -> 1404
    face_head      1 BlazeBlock s2          -> 1x1 conv 128->32 + PReLU -> BlazeBlock -> 3x3/s3 conv -> 1

A BlazeBlock is ``PReLU(pw1x1(dw3x3(x)) + shortcut(x))``; on stride-2 blocks the shortcut is a 2x2 max-pool, and when
the block widens the channels the shortcut is zero-padded with extra channels. Weights come from MediaPipe's
``face_landmark.tflite`` through :func:`ferkit.convert.facemesh.convert_facemesh` (604,685 parameters).

TFLite ``SAME`` padding of a stride-2 convolution pads the bottom/right more than the top/left; it is reproduced with
an explicit ``F.pad`` so the PyTorch network matches the TFLite one at 192 px and still runs at any input size.
"""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["BlazeBlock", "ConvPReLU", "FaceMesh", "same_pad"]


def same_pad(x: Tensor, kernel: int, stride: int) -> Tensor:
    """Zero-pad (B, C, H, W) like TFLite ``SAME``: output ceil(H / stride); an odd extra pixel goes bottom/right."""
    pads: list[int] = []
    for size in (x.shape[-1], x.shape[-2]):  # F.pad order: W (left, right), then H (top, bottom)
        total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads) if any(pads) else x


class ConvPReLU(nn.Module):
    """``kernel x kernel`` convolution with TFLite SAME padding, then per-channel PReLU: (B, Cin, H, W) -> (B, Cout,
    ceil(H / stride), ceil(W / stride))."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int = 1, stride: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel, stride)
        self.act = nn.PReLU(out_channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.conv(same_pad(x, self.conv.kernel_size[0], self.conv.stride[0])))


class BlazeBlock(nn.Module):
    """Residual depthwise-separable block: (B, Cin, H, W) -> (B, Cout, H / stride, W / stride).

    ``PReLU(pw(dw(x)) + shortcut(x))`` with ``dw`` a 3x3 depthwise conv (stride 1 or 2, TFLite SAME padding) and ``pw``
    a 1x1 conv. The shortcut is ``x``, 2x2 max-pooled on stride-2 blocks (``ceil_mode``: identical to TFLite's VALID
    pooling for even sizes, and keeps odd sizes aligned with the SAME-padded main path), then zero-padded from Cin to
    Cout channels when the block widens.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        if stride not in (1, 2) or out_channels < in_channels:
            raise ValueError(f"BlazeBlock needs stride 1 or 2 and out >= in channels, got {stride}, "
                             f"{in_channels}->{out_channels}")
        self.stride = stride
        self.extra_channels = out_channels - in_channels
        self.dw = nn.Conv2d(in_channels, in_channels, 3, stride, padding=1 if stride == 1 else 0, groups=in_channels)
        self.pw = nn.Conv2d(in_channels, out_channels, 1)
        self.act = nn.PReLU(out_channels)

    def forward(self, x: Tensor) -> Tensor:
        y = self.pw(self.dw(same_pad(x, 3, 2) if self.stride == 2 else x))
        shortcut = F.max_pool2d(x, 2, 2, ceil_mode=True) if self.stride == 2 else x
        if self.extra_channels:
            shortcut = F.pad(shortcut, (0, 0, 0, 0, 0, self.extra_channels))
        return self.act(y + shortcut)


def _stage(in_channels: int, out_channels: int, num_blocks: int, downsample: bool = True) -> nn.Sequential:
    """``num_blocks`` BlazeBlocks; the first one strided (and widening) when ``downsample``."""
    first = BlazeBlock(in_channels, out_channels, 2 if downsample else 1)
    return nn.Sequential(first, *(BlazeBlock(out_channels, out_channels) for _ in range(num_blocks - 1)))


class FaceMeshHead(nn.Module):
    """Output branch: (B, 128, H, W) -> (B, out_channels, h, w); ``h = w = 1`` when H and W are 5..10.

    ``blocks`` (BlazeBlocks at 128 ch, the first with stride 2) -> ``reduce`` (1x1 conv to 32 ch + PReLU) -> ``refine``
    (BlazeBlock at 32 ch) -> ``out`` (3x3 conv, stride 3, no padding: 3x3 -> 1x1 at 192 px).
    """

    def __init__(self, num_blocks: int, out_channels: int) -> None:
        super().__init__()
        self.blocks = _stage(128, 128, num_blocks)
        self.reduce = ConvPReLU(128, 32)
        self.refine = BlazeBlock(32, 32)
        self.out = nn.Conv2d(32, out_channels, 3, stride=3)

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.refine(self.reduce(self.blocks(x))))


class FaceMesh(nn.Module):
    """MediaPipe FaceMesh landmark network (no weights loaded here; see ``ferkit.convert.facemesh``).

    Input: (B, 3, H, W) RGB in [0, 1]; the released weights expect a 192 x 192 face crop.
    """

    input_size = 192
    num_landmarks = 468
    feature_channels = (64, 128, 128)
    feature_strides = (8, 16, 32)

    def __init__(self) -> None:
        super().__init__()
        self.stem = ConvPReLU(3, 16, kernel=3, stride=2)
        self.stage1 = _stage(16, 16, 2, downsample=False)
        self.stage2 = _stage(16, 32, 3)
        self.stage3 = _stage(32, 64, 3)
        self.stage4 = _stage(64, 128, 3)
        self.stage5 = _stage(128, 128, 3)
        self.landmark_head = FaceMeshHead(3, 3 * self.num_landmarks)
        self.face_head = FaceMeshHead(1, 1)

    def features(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Backbone maps (B, 64, H/8, W/8), (B, 128, H/16, W/16), (B, 128, H/32, W/32) (sizes rounded up).

        They are the outputs (after the PReLU) of the last BlazeBlock of ``stage3``, ``stage4`` and ``stage5``: in
        the TFLite graph the tensors ``p_re_lu_9``, ``p_re_lu_12`` and ``p_re_lu_15``. At 224 px: 28x28, 14x14, 7x7.
        """
        x = self.stage2(self.stage1(self.stem(x)))
        c3 = self.stage3(x)
        c4 = self.stage4(c3)
        return c3, c4, self.stage5(c4)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(B, 3, H, W) -> landmarks (B, 468, 3) as (x, y, z) in input pixels, face-presence logit (B, 1).

        The heads reduce the stride-32 map to one position only when ceil(H / 32) and ceil(W / 32) are 5..10, i.e.
        for inputs of 129..320 px (the weights are trained at 192 px); other sizes raise ``ValueError``.
        """
        c5 = self.features(x)[2]
        if not all(5 <= s <= 10 for s in c5.shape[-2:]):
            raise ValueError(f"FaceMesh heads need an input of 129..320 px (trained at {self.input_size}), got "
                             f"{tuple(x.shape[-2:])}; use features() for other sizes")
        landmarks, logit = self.landmark_head(c5), self.face_head(c5)
        return landmarks.reshape(x.shape[0], self.num_landmarks, 3), logit.reshape(x.shape[0], 1)
