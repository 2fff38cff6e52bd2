"""POSTER++'s input pipeline (official ``main.py``), declared on the family's registry entry.

Train: ``Resize((224, 224))`` -> ``RandomHorizontalFlip()`` -> ``ToTensor()`` -> ``Normalize(ImageNet)`` ->
``RandomErasing`` with the per-data-set setting (RAF-DB ``p=0.5, scale=(0.02, 0.1)``; AffectNet-7/8 and CAER-S
``p=1, scale=(0.05, 0.05)``; other data sets get RAF-DB's). Eval: ``Resize((224, 224))`` -> ``ToTensor()`` ->
``Normalize``. Erasing comes after normalisation, so erased pixels are 0 = the mean colour. A model's own
``data_config`` (e.g. the open streams' 112 px and dlib normalisation) overrides size and normalisation.
"""

from __future__ import annotations

from typing import Any

from ferkit.constants import IMAGENET_MEAN, IMAGENET_STD

#: POSTER++'s RandomErasing per data set (official main.py).
ERASING: dict[str, dict[str, Any]] = {
    "rafdb": {"erasing_p": 0.5, "erasing_scale": (0.02, 0.1)},
    "affectnet7": {"erasing_p": 1.0, "erasing_scale": (0.05, 0.05)},
    "affectnet8": {"erasing_p": 1.0, "erasing_scale": (0.05, 0.05)},
    "caer_s": {"erasing_p": 1.0, "erasing_scale": (0.05, 0.05)},
}


def transform_defaults(train: bool, dataset: str | None) -> dict[str, Any]:
    """TransformConfig fields of POSTER++ for ``dataset`` (a canonical data-set name, or None = RAF-DB's)."""
    return {"interpolation": "bilinear", "mean": IMAGENET_MEAN, "std": IMAGENET_STD,
            **ERASING.get(dataset or "rafdb", ERASING["rafdb"])}
