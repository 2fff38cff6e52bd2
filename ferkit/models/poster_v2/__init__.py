"""POSTER++ (POSTER V2) and its registered variants."""

from __future__ import annotations

from typing import Any

from ferkit.config import apply_overrides
from ferkit.models._registry import register_family, register_model
from ferkit.models.poster_v2 import pretrained as _pretrained  # noqa: F401  (registers the released weights)
from ferkit.models.poster_v2.adapter import PosterV2Adapter, load_ir50, load_mobilefacenet
from ferkit.models.poster_v2.model import PosterV2, PosterV2Config
from ferkit.models.poster_v2.stream_weights import load_image_stream, load_landmark_stream
from ferkit.models.poster_v2.transforms import transform_defaults
from ferkit.models.poster_v2.vit_weights import load_vit_init

__all__ = ["PosterV2", "PosterV2Config", "build_poster_v2", "load_ir50", "load_mobilefacenet", "load_vit_init"]


def build_poster_v2(*, label_names=None, num_classes: int | None = None, image_weights=None, landmark_weights=None,
                    ir50_weights=None, vit_init=None, trust_checkpoint: bool = False, **overrides: Any) -> PosterV2:
    """Build POSTER++; ``overrides`` are :class:`PosterV2Config` fields.

    ``image_weights`` / ``landmark_weights`` load pretrained stream weights (training from scratch): ``ir50.pth`` and
    ``mobilefacenet_model_best.pth.tar`` (official), or the open streams' files (dlib ``.dat``, FaceMesh ``.tflite``,
    MobileFaceNet OpenVINO IR, or ferkit's converted ``.safetensors``). ``ir50_weights`` is the older name of
    ``image_weights``. ``vit_init`` initialises the token fuser from a timm ViT checkpoint (paper Table 7; see
    :mod:`ferkit.models.poster_v2.vit_weights`).
    """
    if ir50_weights and image_weights:
        raise ValueError("give image_weights or its older name ir50_weights, not both")
    cfg = apply_overrides(PosterV2Config(), overrides)
    model = PosterV2(cfg, label_names=label_names, num_classes=num_classes)
    if image_weights or ir50_weights:
        load_image_stream(model, image_weights or ir50_weights, trust=trust_checkpoint)
    if landmark_weights:
        load_landmark_stream(model, landmark_weights, trust=trust_checkpoint)
    if vit_init:
        load_vit_init(model, vit_init, trust=trust_checkpoint)
    return model


_ADAPTER = PosterV2Adapter()
register_family("poster_v2", transform_defaults=transform_defaults,
                description="POSTER++: IR-50 image stream + landmark stream, window cross-attention, ViT fuser")
_VARIANTS = {
    "poster_v2": ({}, "POSTER++ as the official code computes it"),
    "poster_v2_single_scale": ({"multi_scale": False}, "Table 8 ablation: w/o multi-scale (last scale only)"),
    "poster_v2_no_vit": ({"use_vit": False}, "Table 8 ablation: w/o ViT (sum of the scale features)"),
    "poster_v2_vanilla_ca": ({"attention": "vanilla"}, "Table 8 ablation: vanilla cross-attention instead of W-MCSA"),
    "poster_v2_no_cross_fusion": ({"cross_fusion": False}, "Table 8 ablation: w/o cross-fusion"),
    "poster_v2_vit4": ({"vit_depth": 4}, "Fig. 6: ViT depth 4"),
    "poster_v2_vit6": ({"vit_depth": 6}, "Fig. 6: ViT depth 6"),
    "poster_v2_vit8": ({"vit_depth": 8}, "Fig. 6: ViT depth 8"),
    "poster_v2_open": ({"image_stream": "dlib_resnet", "landmark_stream": "facemesh", "input_size": 112,
                        "embed_dim": 256, "vit_heads": 8},
                       "POSTER++ on open streams (dlib ResNet + MediaPipe FaceMesh), CPU-sized; the default model"),
}
for _name, (_defaults, _desc) in _VARIANTS.items():
    register_model(_name, family="poster_v2", builder=build_poster_v2, adapter=_ADAPTER, description=_desc, **_defaults)
