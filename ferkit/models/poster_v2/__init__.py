"""POSTER++ (POSTER V2) and its registered variants."""

from __future__ import annotations

from typing import Any

from ferkit.config import apply_overrides
from ferkit.models._registry import register_model
from ferkit.models.poster_v2.adapter import PosterV2Adapter, load_ir50, load_mobilefacenet
from ferkit.models.poster_v2.model import PosterV2, PosterV2Config

__all__ = ["PosterV2", "PosterV2Config", "build_poster_v2", "load_ir50", "load_mobilefacenet"]


def build_poster_v2(*, label_names=None, num_classes: int | None = None, ir50_weights=None, landmark_weights=None,
                    trust_checkpoint: bool = False, **overrides: Any) -> PosterV2:
    """Build POSTER++; ``overrides`` are :class:`PosterV2Config` fields.

    ``ir50_weights`` / ``landmark_weights`` load the two backbone files of the official recipe (training from scratch).
    """
    cfg = apply_overrides(PosterV2Config(), overrides)
    model = PosterV2(cfg, label_names=label_names, num_classes=num_classes)
    if ir50_weights:
        load_ir50(model.image_net, ir50_weights, trust=trust_checkpoint)
    if landmark_weights:
        load_mobilefacenet(model.landmark_net, landmark_weights, trust=trust_checkpoint)
    return model


_ADAPTER = PosterV2Adapter()
_VARIANTS = {
    "poster_v2": ({}, "POSTER++ as the official code computes it"),
    "poster_v2_single_scale": ({"multi_scale": False}, "Table 8 ablation: w/o multi-scale (last scale only)"),
    "poster_v2_no_vit": ({"use_vit": False}, "Table 8 ablation: w/o ViT (sum of the scale features)"),
    "poster_v2_vanilla_ca": ({"attention": "vanilla"}, "Table 8 ablation: vanilla cross-attention instead of W-MCSA"),
    "poster_v2_no_cross_fusion": ({"cross_fusion": False}, "Table 8 ablation: w/o cross-fusion"),
    "poster_v2_vit4": ({"vit_depth": 4}, "Fig. 6: ViT depth 4"),
    "poster_v2_vit6": ({"vit_depth": 6}, "Fig. 6: ViT depth 6"),
    "poster_v2_vit8": ({"vit_depth": 8}, "Fig. 6: ViT depth 8"),
}
for _name, (_defaults, _desc) in _VARIANTS.items():
    register_model(_name, family="poster_v2", builder=build_poster_v2, adapter=_ADAPTER, description=_desc, **_defaults)
