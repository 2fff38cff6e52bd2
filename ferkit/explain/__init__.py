"""Explanations: POSTER++ landmark-to-image cross-attention maps and gradient maps (MPA-FER and any classifier).

    >>> from ferkit.explain import explain
    >>> exp = explain(ferkit.load("poster_v2", checkpoint=...), "photo.jpg", out_dir="explain/")
    >>> exp.faces[0].heat.shape        # (224, 224) in [0, 1] over the face crop

See ``docs/inference.md``.
"""

from ferkit.explain.api import Explanation, FaceExplanation, explain, write
from ferkit.explain.gradient import gradient_map
from ferkit.explain.maps import attention_maps, combine

__all__ = ["explain", "write", "Explanation", "FaceExplanation", "attention_maps", "combine", "gradient_map"]
