"""Pluggable streams of POSTER++: which network gives the image maps and which the landmark maps.

Official: image stream ``ir50`` (IR-50 stages 1-3, each map halved by POSTER++'s ``image_down`` convs) and landmark
stream ``mobilefacenet``. Open alternatives whose weights can be redistributed: image stream ``dlib_resnet`` (dlib's
face-recognition ResNet, CC0) and landmark stream ``facemesh`` (MediaPipe FaceMesh, Apache-2.0).

Every stream states, for a square working resolution, the channels and grid side of its three maps and the input
normalisation it expects; :class:`~ferkit.models.poster_v2.model.PosterV2` adds the per-scale projections that
bring the landmark maps to the image maps' channels and grids.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ferkit.constants import DLIB_NORM, IMAGENET_MEAN, IMAGENET_STD, UNIT_NORM
from ferkit.models.poster_v2.ir50 import IR50
from ferkit.nn.dlib_resnet import DlibResNet
from ferkit.nn.facemesh import FaceMesh
from ferkit.nn.mobilefacenet import MobileFaceNet


@dataclass(frozen=True)
class StreamSpec:
    """Static facts of a stream: map channels, input normalisation (mean, std on [0, 1] RGB) and licence."""

    channels: tuple[int, int, int]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    licence: str


def _conv_out(n: int, k: int, s: int, p: int) -> int:
    return 1 + (n + 2 * p - k) // s


def _ceil_div(n: int, d: int) -> int:
    return -(-n // d)


class DlibImageStream(nn.Module):
    """dlib ResNet levels 2-4 (strides 8 / 16 / 32): (B, 64, g0, g0), (B, 128, g1, g1), (B, 256, g2, g2).

    At 112 px the grids are 13 / 6 / 3; at 224 px 27 / 13 / 6 (dlib pads no strided layer). The last level and the
    embedding of the face-recognition network are not built.
    """

    spec = StreamSpec((64, 128, 256), *DLIB_NORM, "CC0-1.0 (dlib-models)")

    def __init__(self):
        super().__init__()
        self.net = DlibResNet(num_levels=4, embedding=False)

    @staticmethod
    def grids(size: int) -> tuple[int, int, int]:
        n = _conv_out(_conv_out(size, 7, 2, 0), 3, 2, 0)  # stem conv, max-pool
        out = []
        for _ in range(3):  # a down level: max(conv branch, 2x2 pooled shortcut) = the pooled side
            n = max(_conv_out(n, 3, 2, 0), n // 2)
            out.append(n)
        return tuple(out)  # type: ignore[return-value]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.net.features(x)[1:]


class FaceMeshLandmarkStream(nn.Module):
    """FaceMesh backbone maps at strides 8 / 16 / 32 (64 / 128 / 128 channels, sides rounded up); frozen."""

    spec = StreamSpec((64, 128, 128), *UNIT_NORM, "Apache-2.0 (MediaPipe)")

    def __init__(self):
        super().__init__()
        self.net = FaceMesh()

    @staticmethod
    def grids(size: int) -> tuple[int, int, int]:
        return _ceil_div(size, 8), _ceil_div(size, 16), _ceil_div(size, 32)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return list(self.net.features(x))


class IR50ImageStream:
    """Namespace for the official image stream's facts (the module is :class:`IR50` itself, for key compatibility)."""

    spec = StreamSpec((64, 128, 256), IMAGENET_MEAN, IMAGENET_STD, "unspecified (IR-50, MS-Celeb-1M)")

    @staticmethod
    def grids(size: int) -> tuple[int, int, int]:
        return size // 2, size // 4, size // 8  # before POSTER++'s stride-2 image_down convs


class MobileFaceNetLandmarkStream:
    """Namespace for the official landmark stream's facts (module: :class:`MobileFaceNet`). The network was trained
    on [0, 1] RGB crops (its author's IR holds no normalisation); the official POSTER++ code feeds it the
    ImageNet-normalised image instead, which ``PosterV2`` keeps for the official pair of streams (IR-50 +
    MobileFaceNet) and corrects for any other image stream."""

    spec = StreamSpec((64, 128, 512), *UNIT_NORM, "not stated (cunjian/pytorch_face_landmark)")

    @staticmethod
    def grids(size: int) -> tuple[int, int, int]:
        return size // 4, size // 8, size // 16


IMAGE_STREAMS = {"ir50": (IR50ImageStream, IR50), "dlib_resnet": (DlibImageStream, DlibImageStream)}
LANDMARK_STREAMS = {"mobilefacenet": (MobileFaceNetLandmarkStream, MobileFaceNet),
                    "facemesh": (FaceMeshLandmarkStream, FaceMeshLandmarkStream)}
