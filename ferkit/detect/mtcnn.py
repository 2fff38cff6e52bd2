"""MTCNN (Zhang et al., "Joint Face Detection and Alignment using Multi-task Cascaded Convolutional Networks", 2016).

Three networks in cascade, with the layer names of timesler/facenet-pytorch (MIT) so its ``pnet.pt`` / ``rnet.pt`` /
``onet.pt`` state dicts load strictly:

1. **P-Net** (fully convolutional, 12x12 receptive field, stride 2) runs on an image pyramid whose first scale maps
   ``min_face_size`` to 12 pixels and each next one shrinks by ``factor``; candidate windows above ``thresholds[0]`` are
   NMS-ed per scale (IoU 0.5) and overall (IoU 0.7), refined with the regression and squared.
2. **R-Net** re-scores 24x24 crops of the candidates (``thresholds[1]``), NMS 0.7, regression, squaring.
3. **O-Net** re-scores 48x48 crops (``thresholds[2]``), regresses boxes and 5 landmarks; final NMS with the
   intersection-over-minimum criterion at 0.7.

Inputs are RGB, ``(pixel - 127.5) / 128``, crops resized with area interpolation. The dense layers of R-Net and
O-Net flatten their feature map in (W, H, C) order — the weights were converted from a Caffe/TF model with that
memory layout. Box arithmetic keeps the original's 1-based "+1" pixel conventions.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ferkit.checkpoint import load_state_dict_strict
from ferkit.detect.base import DEFAULT_MAX_SIDE, FaceDetector, empty_result


class PNet(nn.Module):
    """Proposal net: (B, 3, H, W) -> box regression (B, 4, H', W'), face probability (B, 2, H', W')."""

    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 10, 3), nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(10, 16, 3), nn.PReLU(16)
        self.conv3, self.prelu3 = nn.Conv2d(16, 32, 3), nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, 1)
        self.conv4_2 = nn.Conv2d(32, 4, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return self.conv4_2(x), F.softmax(self.conv4_1(x), dim=1)


def _flatten_whc(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, W*H*C) in the (W, H, C) order the converted dense weights expect."""
    return x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)


class RNet(nn.Module):
    """Refinement net: (B, 3, 24, 24) -> box regression (B, 4), face probability (B, 2)."""

    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 28, 3), nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(28, 48, 3), nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(48, 64, 2), nn.PReLU(64)
        self.dense4, self.prelu4 = nn.Linear(576, 128), nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))  # (B, 28, 11, 11)
        x = self.pool2(self.prelu2(self.conv2(x)))  # (B, 48, 4, 4)
        x = self.prelu3(self.conv3(x))  # (B, 64, 3, 3)
        x = self.prelu4(self.dense4(_flatten_whc(x)))  # (B, 128)
        return self.dense5_2(x), F.softmax(self.dense5_1(x), dim=1)


class ONet(nn.Module):
    """Output net: (B, 3, 48, 48) -> box regression (B, 4), landmarks (B, 10: x1..x5, y1..y5 relative to the box),
    face probability (B, 2)."""

    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 32, 3), nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(32, 64, 3), nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(64, 64, 3), nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4, self.prelu4 = nn.Conv2d(64, 128, 2), nn.PReLU(128)
        self.dense5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))  # (B, 32, 23, 23)
        x = self.pool2(self.prelu2(self.conv2(x)))  # (B, 64, 10, 10)
        x = self.pool3(self.prelu3(self.conv3(x)))  # (B, 64, 4, 4)
        x = self.prelu4(self.conv4(x))  # (B, 128, 3, 3)
        x = self.prelu5(self.dense5(_flatten_whc(x)))  # (B, 256)
        return self.dense6_2(x), self.dense6_3(x), F.softmax(self.dense6_1(x), dim=1)


def _normalise(x: torch.Tensor) -> torch.Tensor:
    return (x - 127.5) * 0.0078125


def pyramid_scales(height: int, width: int, min_face_size: float, factor: float) -> list[float]:
    """Scales s_k = (12 / min_face_size) * factor^k while the scaled shorter side is still >= 12 pixels."""
    scale = 12.0 / min_face_size
    side = min(height, width) * scale
    scales = []
    while side >= 12:
        scales.append(scale)
        scale *= factor
        side *= factor
    return scales


def pnet_candidates(reg: torch.Tensor, prob: torch.Tensor, scale: float, threshold: float) -> torch.Tensor:
    """Windows of P-Net cells with face probability >= threshold -> (N, 9): x1, y1, x2, y2 (original pixels, the
    12x12 window at stride 2 mapped back by ``scale``), score, 4 regression values."""
    ys, xs = torch.nonzero(prob >= threshold, as_tuple=True)
    cells = torch.stack([xs, ys], dim=1).to(reg.dtype)
    top_left = torch.floor((2 * cells + 1) / scale)
    bottom_right = torch.floor((2 * cells + 12) / scale)
    return torch.cat([top_left, bottom_right, prob[ys, xs, None], reg[:, ys, xs].T], dim=1)


def apply_regression(boxes: torch.Tensor, reg: torch.Tensor, plus_one: bool = True) -> torch.Tensor:
    """Shift box corners by ``reg * (width, height)`` (width = x2 - x1 + 1 with the original's convention)."""
    wh = boxes[:, 2:4] - boxes[:, 0:2] + (1 if plus_one else 0)
    out = boxes.clone()
    out[:, 0:4] = boxes[:, 0:4] + reg * torch.cat([wh, wh], dim=1)
    return out


def square_boxes(boxes: torch.Tensor) -> torch.Tensor:
    """Make boxes square around their centre with side max(w, h) (w = x2 - x1)."""
    wh = boxes[:, 2:4] - boxes[:, 0:2]
    side = wh.max(dim=1).values
    out = boxes.clone()
    out[:, 0:2] = boxes[:, 0:2] + wh * 0.5 - side[:, None] * 0.5
    out[:, 2:4] = out[:, 0:2] + side[:, None]
    return out


def crop_resize(image: torch.Tensor, boxes: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Crop each box (1-based inclusive corners truncated to ints, clipped to the image) and area-resize it to
    ``size``; -> (M, 3, size, size) crops and the indices of the boxes that had a non-empty crop."""
    _, h, w = image.shape
    b = boxes[:, :4].trunc().int()
    x1, y1 = b[:, 0].clamp(min=1), b[:, 1].clamp(min=1)
    x2, y2 = b[:, 2].clamp(max=w), b[:, 3].clamp(max=h)
    valid = torch.nonzero((x2 > x1 - 1) & (y2 > y1 - 1)).squeeze(1)
    crops = [F.interpolate(image[None, :, y1[k] - 1:y2[k], x1[k] - 1:x2[k]], size=(size, size), mode="area")
             for k in valid.tolist()]
    return (torch.cat(crops) if crops else image.new_zeros(0, 3, size, size)), valid


def nms_min(boxes: torch.Tensor, scores: torch.Tensor, threshold: float) -> torch.Tensor:
    """Greedy NMS suppressing boxes whose intersection / min(area) exceeds ``threshold`` (areas with the "+1"
    convention); indices by decreasing score."""
    b = boxes.double()
    area = (b[:, 2] - b[:, 0] + 1) * (b[:, 3] - b[:, 1] + 1)
    order = torch.argsort(scores, descending=True, stable=True)
    keep = []
    while order.numel() > 0:
        i, rest = order[0], order[1:]
        keep.append(int(i))
        lt = torch.maximum(b[i, :2], b[rest, :2])
        rb = torch.minimum(b[i, 2:4], b[rest, 2:4])
        inter = (rb - lt + 1).clamp(min=0).prod(dim=1)
        order = rest[inter / torch.minimum(area[i], area[rest]) <= threshold]
    return torch.tensor(keep, dtype=torch.long)


class MTCNNDetector(FaceDetector):
    """``mtcnn``: the three-stage cascade with facenet-pytorch's defaults.

    Options: ``min_face_size`` (20 px, in the image given to the network), ``thresholds`` ((0.6, 0.7, 0.7)),
    ``factor`` (0.709).
    """

    name = "mtcnn"
    default_score_threshold = 0.9
    has_landmarks = True

    def __init__(self, state_dicts: dict[str, dict[str, torch.Tensor]], *, device: str = "cpu",
                 score_threshold: float | None = None, max_side: int | None = DEFAULT_MAX_SIDE,
                 min_face_size: float = 20.0, thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7),
                 factor: float = 0.709, **options: Any):
        if not 0 < factor < 1 or min_face_size <= 0 or len(thresholds) != 3:
            raise ValueError("mtcnn needs 0 < factor < 1, min_face_size > 0 and three thresholds")
        super().__init__(score_threshold=score_threshold, max_side=max_side, **options)
        self.device = torch.device(device)
        self.pnet, self.rnet, self.onet = PNet().eval(), RNet().eval(), ONet().eval()
        for key, net in (("pnet", self.pnet), ("rnet", self.rnet), ("onet", self.onet)):
            load_state_dict_strict(net, state_dicts[key], what=f"MTCNN {key} weights")
            net.to(self.device)
        self.min_face_size, self.thresholds, self.factor = float(min_face_size), tuple(thresholds), float(factor)

    @torch.inference_mode()
    def _detect(self, image: np.ndarray):
        img = torch.tensor(image, device=self.device).permute(2, 0, 1).float()  # (3, H, W) RGB 0..255
        boxes = self._stage1(img)
        if len(boxes):
            boxes = self._stage2(img, boxes)
        if not len(boxes):
            return empty_result(True)
        boxes, points = self._stage3(img, boxes)
        return boxes[:, :4].cpu().numpy(), boxes[:, 4].cpu().numpy(), points.cpu().numpy()

    def _stage1(self, img: torch.Tensor) -> torch.Tensor:
        _, h, w = img.shape
        found = []
        for scale in pyramid_scales(h, w, self.min_face_size, self.factor):
            scaled = F.interpolate(img[None], size=(int(h * scale + 1), int(w * scale + 1)), mode="area")
            reg, prob = self.pnet(_normalise(scaled))
            cand = pnet_candidates(reg[0], prob[0, 1], scale, self.thresholds[0])
            found.append(cand[nms(cand[:, :4], cand[:, 4], 0.5)])
        boxes = torch.cat(found) if found else img.new_zeros(0, 9)
        boxes = boxes[nms(boxes[:, :4], boxes[:, 4], 0.7)]
        refined = apply_regression(boxes[:, :5], boxes[:, 5:9], plus_one=False)
        return square_boxes(refined)

    def _stage2(self, img: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        crops, valid = crop_resize(img, boxes, 24)
        if not len(valid):
            return boxes[:0]
        reg, prob = self.rnet(_normalise(crops))
        score = prob[:, 1]
        ok = score > self.thresholds[1]
        boxes = torch.cat([boxes[valid][ok, :4], score[ok, None]], dim=1)
        reg = reg[ok]
        pick = nms(boxes[:, :4], boxes[:, 4], 0.7)
        return square_boxes(apply_regression(boxes[pick], reg[pick]))

    def _stage3(self, img: torch.Tensor, boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        crops, valid = crop_resize(img, boxes, 48)
        if not len(valid):
            return boxes[:0], img.new_zeros(0, 5, 2)
        reg, pts, prob = self.onet(_normalise(crops))
        score = prob[:, 1]
        ok = score > self.thresholds[2]
        boxes = torch.cat([boxes[valid][ok, :4], score[ok, None]], dim=1)
        wh = boxes[:, 2:4] - boxes[:, 0:2] + 1
        pts = pts[ok]
        points = torch.stack([wh[:, None, 0] * pts[:, :5] + boxes[:, None, 0] - 1,
                              wh[:, None, 1] * pts[:, 5:] + boxes[:, None, 1] - 1], dim=2)  # (N, 5, 2)
        boxes = apply_regression(boxes, reg[ok])
        pick = nms_min(boxes[:, :4], boxes[:, 4], 0.7)
        return boxes[pick], points[pick]


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy IoU NMS (torchvision)."""
    from torchvision.ops import nms as tv_nms

    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.long)
    return tv_nms(boxes.float(), scores.float(), iou_threshold)
