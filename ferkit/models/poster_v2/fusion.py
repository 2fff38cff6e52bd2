"""Landmark-to-image cross-fusion of POSTER++ (one block per scale).

Official behaviour (default): queries are the raw landmark features (no norm, no projection), keys/values a Linear of
the LayerNorm-ed image features, Swin-style relative position bias, one window = the whole map. ferkit also supports
windows smaller than the map, read two ways: ``shared_query=False`` partitions queries and keys into the same windows
(ferkit's reading); ``shared_query=True`` is the paper's W-MCSA (Sec. 3.4): the landmark map is down-sampled (area
pooling) to one window's size and that single query window attends to every image window. Also the paper's projected
query (``query_proj=True``) and the vanilla cross-attention of the Table 8 ablation (global, projected query, no bias).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from timm.layers import DropPath, Mlp
from torch import nn


def relative_position_index(w: int) -> torch.Tensor:
    """(w*w, w*w) int64: ``(y_i - y_j + w - 1) * (2w - 1) + (x_i - x_j + w - 1)`` for tokens i, j in row-major order."""
    ys, xs = torch.meshgrid(torch.arange(w), torch.arange(w), indexing="ij")
    coords = torch.stack([ys.flatten(), xs.flatten()])  # (2, N)
    rel = coords[:, :, None] - coords[:, None, :] + (w - 1)  # (2, N, N)
    return rel[0] * (2 * w - 1) + rel[1]


def window_partition(x: torch.Tensor, w: int) -> torch.Tensor:
    """(B, H, W, C) -> (B * H/w * W/w, w*w, C), windows in row-major order, tokens row-major inside each window."""
    b, h, wd, c = x.shape
    x = x.reshape(b, h // w, w, wd // w, w, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, w * w, c)


def window_merge(x: torch.Tensor, w: int, h: int, wd: int) -> torch.Tensor:
    """Inverse of :func:`window_partition`: (B * nW, w*w, C) -> (B, H, W, C)."""
    c = x.shape[-1]
    x = x.reshape(-1, h // w, wd // w, w, w, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, h, wd, c)


class WindowCrossAttention(nn.Module):
    """Multi-head cross-attention inside a window: queries from landmarks, keys/values from image tokens.

    Args:
        dim: channels C. num_heads: heads h (head dim C / h). window: window side w (N = w*w tokens).
        query_proj: project the queries with a Linear (paper's Eq. 4); the official code uses raw landmark features.
        rel_pos: add the learned relative position bias (official); off for the vanilla ablation.
    """

    def __init__(self, dim: int, num_heads: int, window: int, query_proj: bool = False, rel_pos: bool = True):
        super().__init__()
        self.num_heads, self.window = num_heads, window
        self.scale = (dim / num_heads) ** -0.5
        self.q = nn.Linear(dim, dim) if query_proj else None
        self.kv = nn.Linear(dim, 2 * dim)  # rows [0, C) -> k, [C, 2C) -> v
        self.proj = nn.Linear(dim, dim)
        if rel_pos:
            self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, num_heads))
            nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
            self.register_buffer("relative_position_index", relative_position_index(window), persistent=False)
            self._bias_cache: tuple | None = None
        else:
            self.relative_position_bias_table = None

    def position_bias(self) -> torch.Tensor | None:
        """(h, N, N) relative position bias, or None. Cached while the table is unchanged and no grad is needed."""
        table = self.relative_position_bias_table
        if table is None:
            return None
        cacheable = not (torch.is_grad_enabled() and table.requires_grad)
        key = (table._version, table.data_ptr(), table.dtype, table.device)
        if cacheable and self._bias_cache is not None and self._bias_cache[0] == key:
            return self._bias_cache[1]
        n = self.window**2
        bias = table[self.relative_position_index.view(-1)].view(n, n, -1).permute(2, 0, 1).contiguous()
        self._bias_cache = (key, bias.detach()) if cacheable else None
        return bias

    def attention(self, q: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Split heads. q, x: (B_, N, C) -> q, k, v each (B_, h, N, d)."""
        b, n, c = x.shape
        h = self.num_heads
        k, v = self.kv(x).view(b, n, 2, h, c // h).permute(2, 0, 3, 1, 4)
        if self.q is not None:
            q = self.q(q)
        return q.reshape(b, n, h, c // h).transpose(1, 2), k, v

    def forward(self, q: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """q: (B_, N, C) landmark tokens; x: (B_, N, C) normed image tokens -> (B_, N, C)."""
        b, n, c = x.shape
        q, k, v = self.attention(q, x)
        bias = self.position_bias()
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=None if bias is None else bias.to(q.dtype),
                                             scale=self.scale)  # (B_, h, N, d)
        return self.proj(out.transpose(1, 2).reshape(b, n, c))

    def attention_map(self, q: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Softmax attention weights (B_, h, N, N), for explanations."""
        q, k, _ = self.attention(q, x)
        logits = (q * self.scale) @ k.transpose(-2, -1)
        bias = self.position_bias()
        return (logits if bias is None else logits + bias).softmax(-1)


class CrossFusion(nn.Module):
    """One scale of cross-fusion: ``x = LN(img); x = x + g1 * attn(lm, x); x = x + g2 * MLP(LN(x))``.

    Args:
        dim, num_heads: channels and heads. map_size: side of the feature map. window: window side (divides map_size).
        drop_path: stochastic-depth rate (same module on both branches, as officially). layer_scale: gamma init.
        shared_query: the paper's W-MCSA query: the landmark map area-pooled to (window, window), the same for every
            image window; False: the landmark map partitioned like the image (identical when window = map_size).
    """

    def __init__(self, dim: int, num_heads: int, map_size: int, window: int, drop_path: float = 0.0,
                 layer_scale: float = 1e-5, query_proj: bool = False, rel_pos: bool = True,
                 shared_query: bool = False):
        super().__init__()
        if map_size % window:
            raise ValueError(f"window size {window} must divide the {map_size}x{map_size} feature map")
        self.window = window
        self.shared_query = shared_query
        self.norm = nn.LayerNorm(dim)
        self.attn = WindowCrossAttention(dim, num_heads, window, query_proj=query_proj, rel_pos=rel_pos)
        self.gamma1 = nn.Parameter(layer_scale * torch.ones(dim))
        self.gamma2 = nn.Parameter(layer_scale * torch.ones(dim))
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, 4 * dim)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def windows(self, img: torch.Tensor, lm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """img, lm: (B, C, H, W) -> normed image map (B, H, W, C), query windows and image windows (B_, N, C)."""
        x = self.norm(img.permute(0, 2, 3, 1))
        xw = window_partition(x, self.window)
        if self.shared_query:  # one (w*w)-token query window per image, repeated over its image windows
            b, c = lm.shape[:2]
            q = F.adaptive_avg_pool2d(lm, self.window).flatten(2).transpose(1, 2)  # (B, N, C)
            qw = q.unsqueeze(1).expand(b, xw.shape[0] // b, -1, -1).reshape(xw.shape[0], -1, c)
        else:
            qw = window_partition(lm.permute(0, 2, 3, 1), self.window)
        return x, qw, xw

    def forward(self, img: torch.Tensor, lm: torch.Tensor) -> torch.Tensor:
        """img: (B, C, H, W) image features; lm: (B, C, H, W) landmark features -> (B, C, H, W)."""
        x, qw, xw = self.windows(img, lm)
        a = window_merge(self.attn(qw, xw), self.window, x.shape[1], x.shape[2])  # (B, H, W, C)
        x = x + self.drop_path(self.gamma1 * a)
        x = x + self.drop_path(self.gamma2 * self.mlp(self.norm2(x)))
        return x.permute(0, 3, 1, 2)
