"""MPA-FER's input pipeline (docs/mpa_fer.md#d9-training-recipe-and-transforms), declared on the family's
registry entry.

Train: ``Resize((256, 256), bicubic)`` -> ``RandomCrop(224)`` -> ``RandomHorizontalFlip`` -> ``ToTensor`` ->
``Normalize(CLIP)`` -> ``RandomErasing(p=0.5, scale=(0.02, 0.1), value=0)``; eval ``Resize((224, 224), bicubic)`` ->
``ToTensor`` -> ``Normalize(CLIP)``. The train resize keeps the 256/224 ratio for other input sizes.
"""

from __future__ import annotations

from typing import Any

from ferkit.constants import CLIP_MEAN, CLIP_STD


def transform_defaults(train: bool, dataset: str | None) -> dict[str, Any]:
    """TransformConfig fields of MPA-FER (the same for every data set)."""
    return {"interpolation": "bicubic", "mean": CLIP_MEAN, "std": CLIP_STD, "resize_ratio": 256 / 224}
