"""POSTER++ after the streams under every option (Table 8 ablations, Fig. 6 depths, window readings, projected query),
restated functionally in the dtype of the inputs, from what each option means (docs/poster_v2.md, paper Sec. 3.4-3.5
and 4.5). It reads a state dict with ferkit's key names but shares no code with ``ferkit.models.poster_v2``: windows
are explicit slices, area pooling is a reshape-mean, the relative position index comes from ``poster_v2_official``.

The streams themselves are checked against the official re-statement (``poster_v2_official``); here they are inputs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from tests.reference.poster_v2_official import _rel_index

HEADS = (2, 4, 8)  # cross-attention heads per scale


@dataclass(frozen=True)
class Spec:
    """What the computation is, stated independently of ``PosterV2Config`` (defaults: the official model).

    scales: which scales are fused (``(2,)`` = Table 8 "w/o multi-scale"). use_vit: False = "w/o ViT" (sum of the
    mean-pooled token groups, LayerNorm, SE, head). cross_fusion: False = "w/o cross-fusion" (per scale the image
    tokens, then the landmark tokens, all into the ViT). vanilla: "w/o W-MCSA" (one global window, projected query,
    no position bias). windows: window side per scale (None = the whole map). shared_query: the paper's W-MCSA query
    (landmark map area-pooled to one window, shared by all windows). query_proj: Linear on the queries.
    vit_heads, vit_depth: heads and blocks of the token fuser (Fig. 6 varies the depth).
    """

    scales: tuple[int, ...] = (0, 1, 2)
    use_vit: bool = True
    cross_fusion: bool = True
    vanilla: bool = False
    windows: tuple[int, int, int] | None = None
    shared_query: bool = False
    query_proj: bool = False
    vit_heads: int = 8
    vit_depth: int = 2


def _lin(x: torch.Tensor, sd: dict, p: str) -> torch.Tensor:
    return x @ sd[p + ".weight"].t() + sd[p + ".bias"]


def _ln(x: torch.Tensor, sd: dict, p: str, eps: float) -> torch.Tensor:
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + eps) * sd[p + ".weight"] + sd[p + ".bias"]


def _gelu(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))


def _mlp(x: torch.Tensor, sd: dict, p: str) -> torch.Tensor:
    return _lin(_gelu(_lin(x, sd, p + ".fc1")), sd, p + ".fc2")


def _heads(t: torch.Tensor, h: int) -> torch.Tensor:
    """(B, N, C) -> (B, h, N, C / h), heads contiguous in C."""
    b, n, c = t.shape
    return t.reshape(b, n, h, c // h).transpose(1, 2)


def attention(q: torch.Tensor, x: torch.Tensor, sd: dict, p: str, heads: int, bias: torch.Tensor | None,
              project: bool) -> torch.Tensor:
    """Cross-attention of query tokens q (B, N, C) on normed image tokens x (B, N, C) -> (B, N, C)."""
    c = x.shape[-1]
    if project:
        q = _lin(q, sd, p + ".q")
    kv = _lin(x, sd, p + ".kv")
    qh, kh, vh = _heads(q, heads), _heads(kv[..., :c], heads), _heads(kv[..., c:], heads)
    logits = qh @ kh.transpose(-2, -1) / math.sqrt(c // heads)
    if bias is not None:
        logits = logits + bias
    out = torch.softmax(logits, -1) @ vh  # (B, h, N, d)
    return _lin(out.transpose(1, 2).reshape(x.shape), sd, p + ".proj")


def area_pool(m: torch.Tensor, w: int) -> torch.Tensor:
    """(B, H, W, C) with H, W multiples of w -> (B, w, w, C): the mean of each (H/w, W/w) cell."""
    b, h, wd, c = m.shape
    return m.reshape(b, w, h // w, w, wd // w, c).mean((2, 4))


def fusion(img: torch.Tensor, lm: torch.Tensor, sd: dict, s: int, spec: Spec) -> torch.Tensor:
    """One scale of cross-fusion. img, lm: (B, C, M, M) -> (B, C, M, M)."""
    p = f"fusion.{s}"
    x = _ln(img.permute(0, 2, 3, 1), sd, p + ".norm", 1e-5)  # (B, M, M, C)
    q_map = lm.permute(0, 2, 3, 1)
    b, m, _, c = x.shape
    w = m if spec.vanilla or spec.windows is None else spec.windows[s]
    bias = None
    if not spec.vanilla:
        table = sd[p + ".attn.relative_position_bias_table"]
        bias = table[_rel_index(w).reshape(-1)].reshape(w * w, w * w, -1).permute(2, 0, 1)
    shared = area_pool(q_map, w).reshape(b, w * w, c) if spec.shared_query else None
    a = torch.zeros_like(x)
    for y0 in range(0, m, w):
        for x0 in range(0, m, w):
            xs = x[:, y0:y0 + w, x0:x0 + w].reshape(b, w * w, c)
            qs = shared if shared is not None else q_map[:, y0:y0 + w, x0:x0 + w].reshape(b, w * w, c)
            out = attention(qs, xs, sd, p + ".attn", HEADS[s], bias, spec.query_proj or spec.vanilla)
            a[:, y0:y0 + w, x0:x0 + w] = out.reshape(b, w, w, c)
    y = x + sd[p + ".gamma1"] * a
    y = y + sd[p + ".gamma2"] * _mlp(_ln(y, sd, p + ".norm2", 1e-5), sd, p + ".mlp")
    return y.permute(0, 3, 1, 2)


def tokenize(m: torch.Tensor, sd: dict, p: str) -> torch.Tensor:
    """Stride-2 3x3 convs (or one 1x1 conv) ``p.0``, ``p.1``, ... -> tokens (B, T, D), row-major."""
    i = 0
    while f"{p}.{i}.weight" in sd:
        wgt = sd[f"{p}.{i}.weight"]
        one = wgt.shape[-1] == 1
        m = F.conv2d(m, wgt, sd[f"{p}.{i}.bias"], stride=1 if one else 2, padding=0 if one else 1)
        i += 1
    return m.flatten(2).transpose(1, 2)


def token_groups(img: list, lm: list | None, sd: dict, spec: Spec) -> list[torch.Tensor]:
    """Token groups in ViT order: per scale the fused tokens, or the image then the landmark tokens."""
    groups = []
    for s in spec.scales:
        if spec.cross_fusion:
            groups.append(tokenize(fusion(img[s], lm[s], sd, s, spec), sd, f"tokenize.{s}"))
        else:
            groups.append(tokenize(img[s], sd, f"tokenize.{s}"))
            if lm is not None:
                groups.append(tokenize(lm[s], sd, f"landmark_tokenize.{s}"))
    return groups


def vit(tokens: torch.Tensor, sd: dict, heads: int, depth: int) -> torch.Tensor:
    """Pre-norm ViT over cls + tokens (all rows in every block) -> normed cls (B, D)."""
    b = tokens.shape[0]
    x = torch.cat([sd["fuser.cls_token"].expand(b, -1, -1), tokens], 1) + sd["fuser.pos_embed"]
    for i in range(depth):
        p = f"fuser.blocks.{i}"
        h = _ln(x, sd, p + ".norm1", 1e-6)
        qkv = _lin(h, sd, p + ".attn.qkv")
        q, k, v = (_heads(t, heads) for t in qkv.chunk(3, -1))
        att = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), -1)
        x = x + _lin((att @ v).transpose(1, 2).reshape(x.shape), sd, p + ".attn.proj")
        x = x + _mlp(_ln(x, sd, p + ".norm2", 1e-6), sd, p + ".mlp")
    return _ln(x, sd, "fuser.norm", 1e-6)[:, 0]


def features(img: list, lm: list | None, sd: dict, spec: Spec) -> torch.Tensor:
    """Gated features before the head (B, D)."""
    groups = token_groups(img, lm, sd, spec)
    if spec.use_vit:
        f = vit(torch.cat(groups, 1), sd, spec.vit_heads, spec.vit_depth)
    else:
        f = _ln(sum(g.mean(1) for g in groups), sd, "pool_norm", 1e-6)
    gate = torch.sigmoid(_lin(torch.relu(_lin(f, sd, "se.linear1")), sd, "se.linear2"))
    return f * gate


def logits(img: list, lm: list | None, sd: dict, spec: Spec) -> torch.Tensor:
    """Stream maps (B, C_s, M_s, M_s) per scale -> logits (B, K)."""
    return _lin(features(img, lm, sd, spec), sd, "head")
