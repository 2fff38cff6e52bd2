"""RetinaFace with a MobileNet-0.25 backbone (boxes + 5 landmarks), written for the public biubug6 weights.

Architecture (Deng et al., "RetinaFace: Single-stage Dense Face Localisation in the Wild", 2019) as implemented in
biubug6/Pytorch_Retinaface and biubug6/Face-Detector-1MB-with-landmark (MIT): a MobileNetV1 x0.25 body whose three
stages (strides 8, 16, 32; 64/128/256 channels) feed a 3-level FPN (64 channels), one SSH context module per level
and 1x1-conv heads with 2 anchors per cell (class 2, box 4, landmarks 10). Module and parameter names follow the
released state dict so ``mobilenet0.25_Final.pth`` loads strictly.

Two published configurations share this state-dict layout but differ in activation and anchors:

* ``"1mb"`` (default; the shared ``retinaface_mobilenet0.25_Final.pth`` comes from Face-Detector-1MB-with-landmark):
  ReLU everywhere, anchor sizes (10, 20), (32, 64), (128, 256);
* ``"pytorch_retinaface"`` (biubug6/Pytorch_Retinaface): LeakyReLU(0.1), anchors (16, 32), (64, 128), (256, 512).

Input: BGR float image minus the mean (104, 117, 123), no scaling, any size. Decoding uses variances (0.1, 0.2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ferkit.checkpoint import load_state_dict_strict
from ferkit.detect.base import DEFAULT_MAX_SIDE, FaceDetector, empty_result
from ferkit.nn.optimize import fold_batchnorm_

BGR_MEAN = (104.0, 117.0, 123.0)


@dataclass(frozen=True)
class RetinaFaceConfig:
    """Anchors and activation of one published RetinaFace-MobileNet0.25 training setup."""

    min_sizes: tuple[tuple[int, ...], ...]
    steps: tuple[int, ...] = (8, 16, 32)
    variances: tuple[float, float] = (0.1, 0.2)
    leaky: float = 0.0  # negative slope of every activation (0 = ReLU)


CONFIGS: dict[str, RetinaFaceConfig] = {
    "1mb": RetinaFaceConfig(min_sizes=((10, 20), (32, 64), (128, 256)), leaky=0.0),
    "pytorch_retinaface": RetinaFaceConfig(min_sizes=((16, 32), (64, 128), (256, 512)), leaky=0.1),
}


def _act(leaky: float) -> nn.Module:
    return nn.LeakyReLU(leaky, inplace=True) if leaky else nn.ReLU(inplace=True)


def _conv_bn(cin: int, cout: int, k: int, stride: int, leaky: float | None, groups: int = 1) -> list[nn.Module]:
    """Conv (no bias) + BN (+ activation unless ``leaky is None``)."""
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    return layers if leaky is None else [*layers, _act(leaky)]


def _depthwise_separable(cin: int, cout: int, stride: int, leaky: float) -> nn.Sequential:
    # indices 0,1,(2) depthwise 3x3 + BN + act; 3,4,(5) pointwise 1x1 + BN + act — as in the state dict
    return nn.Sequential(*_conv_bn(cin, cin, 3, stride, leaky, groups=cin), *_conv_bn(cin, cout, 1, 1, leaky))


class MobileNetV1x025(nn.Module):
    """Backbone trunk; ``forward`` returns the outputs of stages 1-3 (strides 8, 16, 32)."""

    def __init__(self, leaky: float):
        super().__init__()
        dw = _depthwise_separable
        self.stage1 = nn.Sequential(nn.Sequential(*_conv_bn(3, 8, 3, 2, leaky)), dw(8, 16, 1, leaky),
                                    dw(16, 32, 2, leaky), dw(32, 32, 1, leaky), dw(32, 64, 2, leaky),
                                    dw(64, 64, 1, leaky))
        self.stage2 = nn.Sequential(dw(64, 128, 2, leaky), *[dw(128, 128, 1, leaky) for _ in range(5)])
        self.stage3 = nn.Sequential(dw(128, 256, 2, leaky), dw(256, 256, 1, leaky))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        c1 = self.stage1(x)  # (B, 64, H/8, W/8)
        c2 = self.stage2(c1)  # (B, 128, H/16, W/16)
        c3 = self.stage3(c2)  # (B, 256, H/32, W/32)
        return [c1, c2, c3]


class FPN(nn.Module):
    """Top-down feature pyramid: 1x1 laterals, nearest upsampling + add, 3x3 merge on the two finer levels."""

    def __init__(self, in_channels: tuple[int, int, int], out: int, leaky: float):
        super().__init__()
        self.output1, self.output2, self.output3 = (nn.Sequential(*_conv_bn(c, out, 1, 1, leaky)) for c in in_channels)
        self.merge1 = nn.Sequential(*_conv_bn(out, out, 3, 1, leaky))
        self.merge2 = nn.Sequential(*_conv_bn(out, out, 3, 1, leaky))

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        p1, p2, p3 = self.output1(feats[0]), self.output2(feats[1]), self.output3(feats[2])
        p2 = self.merge2(p2 + F.interpolate(p3, size=p2.shape[-2:], mode="nearest"))
        p1 = self.merge1(p1 + F.interpolate(p2, size=p1.shape[-2:], mode="nearest"))
        return [p1, p2, p3]


class SSH(nn.Module):
    """Context module: concat of a 3x3 branch (C/2) and stacked 3x3 branches emulating 5x5 and 7x7 (C/4 each)."""

    def __init__(self, cin: int, cout: int, leaky: float):
        super().__init__()
        q = cout // 4
        self.conv3X3 = nn.Sequential(*_conv_bn(cin, cout // 2, 3, 1, None))
        self.conv5X5_1 = nn.Sequential(*_conv_bn(cin, q, 3, 1, leaky))
        self.conv5X5_2 = nn.Sequential(*_conv_bn(q, q, 3, 1, None))
        self.conv7X7_2 = nn.Sequential(*_conv_bn(q, q, 3, 1, leaky))
        self.conv7x7_3 = nn.Sequential(*_conv_bn(q, q, 3, 1, None))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mid = self.conv5X5_1(x)
        branch7 = self.conv7x7_3(self.conv7X7_2(mid))
        return F.relu(torch.cat([self.conv3X3(x), self.conv5X5_2(mid), branch7], dim=1))


class _Head(nn.Module):
    """1x1 conv predicting ``per_anchor`` values per anchor; output (B, H*W*anchors, per_anchor)."""

    def __init__(self, cin: int, anchors: int, per_anchor: int):
        super().__init__()
        self.per_anchor = per_anchor
        self.conv1x1 = nn.Conv2d(cin, anchors * per_anchor, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1x1(x).permute(0, 2, 3, 1)  # (B, H, W, A*k): anchors vary fastest within a cell
        return out.reshape(out.shape[0], -1, self.per_anchor)


class RetinaFace(nn.Module):
    """RetinaFace-MobileNet0.25. ``forward(x)`` -> (box deltas (B, N, 4), class logits (B, N, 2),
    landmark deltas (B, N, 10)) for the N priors of :func:`prior_boxes` in the same order."""

    def __init__(self, config: RetinaFaceConfig | str = "1mb"):
        super().__init__()
        self.config = CONFIGS[config] if isinstance(config, str) else config
        leaky = self.config.leaky
        anchors = len(self.config.min_sizes[0])
        self.body = MobileNetV1x025(leaky)
        self.fpn = FPN((64, 128, 256), 64, leaky)
        self.ssh1, self.ssh2, self.ssh3 = SSH(64, 64, leaky), SSH(64, 64, leaky), SSH(64, 64, leaky)
        self.ClassHead = nn.ModuleList(_Head(64, anchors, 2) for _ in range(3))
        self.BboxHead = nn.ModuleList(_Head(64, anchors, 4) for _ in range(3))
        self.LandmarkHead = nn.ModuleList(_Head(64, anchors, 10) for _ in range(3))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        p = self.fpn(self.body(x))
        feats = [self.ssh1(p[0]), self.ssh2(p[1]), self.ssh3(p[2])]
        boxes = torch.cat([h(f) for h, f in zip(self.BboxHead, feats)], dim=1)
        logits = torch.cat([h(f) for h, f in zip(self.ClassHead, feats)], dim=1)
        landmarks = torch.cat([h(f) for h, f in zip(self.LandmarkHead, feats)], dim=1)
        return boxes, logits, landmarks


def prior_boxes(height: int, width: int, config: RetinaFaceConfig) -> torch.Tensor:
    """Anchor boxes (N, 4) as (cx, cy, w, h) in pixels, ordered level -> row -> column -> anchor size.

    Each level with stride s has a ceil(H/s) x ceil(W/s) grid; cell (i, j) is centred at ((j + 0.5) s, (i + 0.5) s).
    """
    out = []
    for step, sizes in zip(config.steps, config.min_sizes):
        rows, cols = math.ceil(height / step), math.ceil(width / step)
        cy, cx = torch.meshgrid((torch.arange(rows) + 0.5) * step, (torch.arange(cols) + 0.5) * step, indexing="ij")
        size = torch.tensor(sizes, dtype=torch.float32)
        centres = torch.stack([cx, cy], dim=-1).reshape(-1, 1, 2).expand(-1, len(sizes), 2)
        wh = size.view(1, -1, 1).expand(rows * cols, -1, 2)
        out.append(torch.cat([centres, wh], dim=-1).reshape(-1, 4))
    return torch.cat(out, dim=0)


def decode_boxes(deltas: torch.Tensor, priors: torch.Tensor, variances: tuple[float, float]) -> torch.Tensor:
    """SSD box decoding: centre offsets scaled by ``v0 * prior size``, log-size ratios by ``v1``; -> (N, 4) x1y1x2y2."""
    centre = priors[:, :2] + deltas[:, :2] * variances[0] * priors[:, 2:]
    size = priors[:, 2:] * torch.exp(deltas[:, 2:] * variances[1])
    return torch.cat([centre - size / 2, centre + size / 2], dim=1)


def decode_landmarks(deltas: torch.Tensor, priors: torch.Tensor, variances: tuple[float, float]) -> torch.Tensor:
    """Landmark decoding: each (dx, dy) pair is an offset from the prior centre in units of ``v0 * prior size``;
    -> (N, 5, 2)."""
    d = deltas.reshape(-1, 5, 2)
    return priors[:, None, :2] + d * variances[0] * priors[:, None, 2:]


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Indices kept by greedy non-maximum suppression, by decreasing score (torchvision's implementation)."""
    from torchvision.ops import nms as tv_nms

    return tv_nms(boxes.float(), scores.float(), iou_threshold)


class RetinaFaceDetector(FaceDetector):
    """``retinaface``: RetinaFace-MobileNet0.25 (biubug6 weights) on CPU or GPU.

    Options: ``config`` ("1mb" | "pytorch_retinaface", see module doc), ``nms_threshold`` (0.4), ``pre_nms_top_k``
    (5000) and ``keep_top_k`` (750) as in the reference test scripts; ``optimize`` (True) folds BatchNorm into the
    convolutions and uses the channels-last layout after the strict load (same outputs to float rounding).
    """

    name = "retinaface"
    default_score_threshold = 0.9
    has_landmarks = True

    def __init__(self, state_dict: dict[str, torch.Tensor], *, device: str = "cpu",
                 score_threshold: float | None = None, max_side: int | None = DEFAULT_MAX_SIDE, config: str = "1mb",
                 nms_threshold: float = 0.4, pre_nms_top_k: int = 5000, keep_top_k: int = 750, optimize: bool = True,
                 **options: Any):
        if config not in CONFIGS:
            raise ValueError(f"unknown RetinaFace config {config!r}; expected one of {sorted(CONFIGS)}")
        super().__init__(score_threshold=score_threshold, max_side=max_side, **options)
        self.device = torch.device(device)
        self.net = RetinaFace(config).eval()
        load_state_dict_strict(self.net, state_dict, what="RetinaFace weights")
        self.optimize = optimize
        if optimize:  # inference-only: BatchNorm folded into the convs, channels-last layout (2-3x faster on CPU)
            fold_batchnorm_(self.net)
            self.net = self.net.to(memory_format=torch.channels_last)
        self.net.to(self.device)
        self.nms_threshold, self.pre_nms_top_k, self.keep_top_k = nms_threshold, pre_nms_top_k, keep_top_k

    @torch.inference_mode()
    def _detect(self, image: np.ndarray):
        h, w = image.shape[:2]
        x = torch.from_numpy(image[:, :, ::-1].astype(np.float32))  # RGB -> BGR, the training colour order
        x = (x - torch.tensor(BGR_MEAN)).permute(2, 0, 1).unsqueeze(0).to(self.device)
        if self.optimize:
            x = x.contiguous(memory_format=torch.channels_last)
        deltas, logits, lm_deltas = self.net(x)
        cfg = self.net.config
        priors = prior_boxes(h, w, cfg).to(self.device)
        scores = F.softmax(logits[0], dim=-1)[:, 1]
        keep = torch.nonzero(scores >= self.score_threshold).squeeze(1)
        if keep.numel() == 0:
            return empty_result(True)
        keep = keep[scores[keep].argsort(descending=True)[: self.pre_nms_top_k]]
        boxes = decode_boxes(deltas[0, keep], priors[keep], cfg.variances)
        landmarks = decode_landmarks(lm_deltas[0, keep], priors[keep], cfg.variances)
        picked = nms(boxes, scores[keep], self.nms_threshold)[: self.keep_top_k]
        return (boxes[picked].cpu().numpy(), scores[keep][picked].cpu().numpy(), landmarks[picked].cpu().numpy())
