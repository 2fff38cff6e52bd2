"""POSTER++ landmark-to-image cross-attention maps (the paper's Fig. 4 and Fig. 13): ``PosterV2.attention_maps``.

In each cross-fusion block the landmark features are the queries and the image features the keys. The map of a scale
is the attention weight each image position receives, averaged over heads and over query positions: inside a window
the values sum to 1, so a uniform attention gives a flat map. Fig. 13 shows the highest-level scale (7x7).
"""

from __future__ import annotations

import torch
from torch import nn

from ferkit.models.poster_v2.fusion import window_merge


def attention_maps(model: nn.Module, x: torch.Tensor) -> dict[int, torch.Tensor]:
    """Landmark-to-image attention per scale.

    Args:
        model: POSTER++ (``streams``, ``fusion``; the ``for_inference`` copy works too). x: (B, 3, H, W) normalised.

    Returns:
        ``{scale: (B, M, M)}`` for the model's scales (M = 28, 14, 7): mean over heads and queries of the softmax
        attention on each image position (each window's values sum to 1).

    Raises:
        ValueError: a model without cross-fusion (nothing to show).
    """
    if not hasattr(model, "fusion") or not hasattr(model, "streams"):
        raise ValueError(f"{type(model).__name__} has no landmark-to-image cross-fusion (POSTER++ only; the "
                         "'w/o cross-fusion' ablation has none)")
    with torch.no_grad():
        img, lm = model.streams(x)
        out = {}
        for s in model.scales:
            fusion = model.fusion[str(s)]
            normed, q_windows, x_windows = fusion.windows(img[s], lm[s])  # (B, H, W, C), (B*nW, N, C) x2
            attn = fusion.attn.attention_map(q_windows, x_windows)  # (B*nW, heads, N_q, N_k)
            keys = attn.float().mean(dim=(1, 2))  # (B*nW, N_k)
            merged = window_merge(keys[..., None], fusion.window, normed.shape[1], normed.shape[2])  # (B, H, W, 1)
            out[s] = merged[..., 0]
    return out
