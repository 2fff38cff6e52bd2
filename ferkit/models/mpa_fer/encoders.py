"""CLIP's two towers re-expressed so prompts can enter them (docs/mpa_fer.md#d2-soft-prompts-and-the-text-encoder,
#d6-deep-visual-prompts). Nothing here has parameters: the functions run the frozen modules of an open_clip ``CLIP``
(3.x, batch-first blocks) on prompted inputs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _block(block: nn.Module, x: torch.Tensor, batch_first: bool, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Run one residual block on (B, L, D) whatever the transformer's layout."""
    if batch_first:
        return block(x, attn_mask=attn_mask)
    return block(x.transpose(0, 1), attn_mask=attn_mask).transpose(0, 1)


def patch_tokens(visual: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Class token + patch tokens with positions, before ``ln_pre``. (B, 3, H, W) -> (B, 1 + N_l, W_v)."""
    x = visual.conv1(images.to(visual.conv1.weight.dtype))  # (B, W_v, g, g)
    x = x.flatten(2).transpose(1, 2)  # (B, N_l, W_v)
    cls = visual.class_embedding.to(x.dtype).view(1, 1, -1).expand(x.shape[0], -1, -1)
    return torch.cat([cls, x], dim=1) + visual.positional_embedding.to(x.dtype)


def value_path(block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """MaskCLIP / GalLoP local features: the last block with attention replaced by its value projection.

    (B, N, D) -> (B, N, D): ``y = x + out_proj(v(ln_1(x)))``; ``y + mlp(ln_2(y))`` (LayerScale kept if any).
    """
    attn = block.attn
    d = x.shape[-1]
    v = F.linear(block.ln_1(x), attn.in_proj_weight[2 * d:], attn.in_proj_bias[2 * d:])
    y = x + block.ls_1(attn.out_proj(v))
    return y + block.ls_2(block.mlp(block.ln_2(y)))


def encode_image(visual: nn.Module, images: torch.Tensor, prompts: torch.Tensor | None = None, *,
                 before_ln_pre: bool = False, local: str | None = "token") -> tuple[torch.Tensor, torch.Tensor | None]:
    """Image encoder with deep visual prompts (Eq. 5): fresh prompts appended at every layer, their outputs dropped.

    Args:
        visual: open_clip ``VisionTransformer``. images: (B, 3, H, W), CLIP-normalised.
        prompts: (L_v, N_p, W_v) or None (plain CLIP: equals ``visual(images)``).
        before_ln_pre: the first layer's prompts pass through ``ln_pre`` too (IVLP placement).
        local: ``"token"`` (ln_post + proj on patch outputs), ``"value"`` (value path of the last block) or None.

    Returns:
        z_g (B, E) global features, Z_l (B, N_l, E) local features or None.
    """
    x = patch_tokens(visual, images)  # (B, 1 + N_l, W_v)
    n, batch = x.shape[1], x.shape[0]
    blocks = visual.transformer.resblocks
    batch_first = getattr(visual.transformer, "batch_first", True)
    if prompts is not None and before_ln_pre:
        x = visual.ln_pre(torch.cat([x, prompts[0].to(x.dtype).expand(batch, -1, -1)], dim=1))
    else:
        x = visual.ln_pre(x)
    last_in = x
    for i, block in enumerate(blocks):
        if prompts is not None and not (i == 0 and before_ln_pre):
            x = torch.cat([x, prompts[i].to(x.dtype).expand(batch, -1, -1)], dim=1)  # (B, n + N_p, W_v)
        last_in = x
        x = _block(block, x, batch_first)[:, :n]
    x_out = visual.ln_post(x) @ visual.proj  # (B, 1 + N_l, E)
    if local is None:
        return x_out[:, 0], None
    if local == "value":
        patches = visual.ln_post(value_path(blocks[-1], last_in[:, 1:n])) @ visual.proj
        return x_out[:, 0], patches
    return x_out[:, 0], x_out[:, 1:]


def encode_text_embeddings(clip: nn.Module, emb: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """CLIP's ``encode_text`` after the embedding lookup (docs/mpa_fer.md#d2-soft-prompts-and-the-text-encoder):
    positions, causal transformer, ``ln_final``, EOT pooling (EOT has the largest id), projection. emb (n, L, D_t),
    tokens (n, L) -> (n, E)."""
    x = emb + clip.positional_embedding.to(emb.dtype)
    mask = clip.attn_mask.to(device=x.device, dtype=x.dtype)
    batch_first = getattr(clip.transformer, "batch_first", True)
    for block in clip.transformer.resblocks:
        x = _block(block, x, batch_first, attn_mask=mask)
    x = clip.ln_final(x)
    x = x[torch.arange(x.shape[0], device=x.device), tokens.argmax(dim=-1)]  # (n, D_t)
    proj = clip.text_projection
    return proj(x) if isinstance(proj, nn.Module) else x @ proj
