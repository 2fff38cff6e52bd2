"""MPA-FER's similarities and losses (paper Eqs. 1-12). Pure functions on tensors.

Decisions: docs/mpa_fer.md#d5-soft-hard-prompt-alignment, #d7-class-prototypes, #d8-global-local-logits.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def l2norm(x: torch.Tensor) -> torch.Tensor:
    return F.normalize(x, dim=-1)


def content_mean(emb: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Mean token embedding over the content positions 1 .. eot-1 (drops SOT, EOT, padding).

    emb (n, L, D), tokens (n, L) with EOT = the largest id -> (n, D).
    """
    pos = torch.arange(tokens.shape[1], device=tokens.device)
    keep = (pos[None] >= 1) & (pos[None] < tokens.argmax(dim=-1, keepdim=True))  # (n, L)
    w = keep.to(emb.dtype).unsqueeze(-1)
    return (emb * w).sum(1) / w.sum(1).clamp_min(1)


def position_similarity(e_hard: torch.Tensor, hard_tokens: torch.Tensor, e_soft: torch.Tensor,
                        soft_tokens: torch.Tensor) -> torch.Tensor:
    """Mean per-position cosine over positions 1 .. P-1, P = the largest EOT index of all prompts
    (``ta_pool="position"``).

    e_hard (C, L, D), e_soft (C, L, D) -> (C_hard, C_soft).
    """
    p = int(max(hard_tokens.argmax(-1).max(), soft_tokens.argmax(-1).max()))
    h, s = l2norm(e_hard[:, 1:p]), l2norm(e_soft[:, 1:p])  # (C, P-1, D)
    return torch.einsum("dpk,cpk->dc", h, s) / max(p - 1, 1)


def alignment_ce(sim: torch.Tensor, tau: float, direction: str = "hard_anchor") -> torch.Tensor:
    """Cross-entropy of Eqs. 1-3 on ``sim[d, c]`` = sim(hard prompt d, soft prompt c); the target of row d is d.

    ``hard_anchor``: softmax over soft candidates c for each hard anchor d (Eq. 1); ``soft_anchor``: the transpose;
    ``symmetric``: their average.
    """
    target = torch.arange(sim.shape[0], device=sim.device)
    hard = F.cross_entropy(sim / tau, target)
    if direction == "hard_anchor":
        return hard
    soft = F.cross_entropy(sim.t() / tau, target)
    if direction == "soft_anchor":
        return soft
    if direction == "symmetric":
        return (hard + soft) / 2
    raise ValueError(f"unknown align_dir {direction!r}")


def token_alignment_loss(e_soft: torch.Tensor, soft_tokens: torch.Tensor, e_hard: torch.Tensor,
                         hard_tokens: torch.Tensor, *, tau: float, pool: str = "mean",
                         direction: str = "hard_anchor") -> torch.Tensor:
    """L_ta (Eqs. 1-2) between prompt token embeddings t_c (soft, (C, L, D)) and t*_d (hard, (C, L, D))."""
    if pool == "mean":
        sim = l2norm(content_mean(e_hard, hard_tokens)) @ l2norm(content_mean(e_soft, soft_tokens)).t()
    elif pool == "position":
        sim = position_similarity(e_hard, hard_tokens, e_soft, soft_tokens)
    else:
        raise ValueError(f"unknown ta_pool {pool!r}")
    return alignment_ce(sim, tau, direction)


def prompt_alignment_loss(t_soft: torch.Tensor, t_hard: torch.Tensor, *, tau: float, direction: str = "hard_anchor",
                          kind: str = "ce") -> torch.Tensor:
    """L_pa (Eq. 3) between text-encoder outputs θ(t_c) (C, E) and θ(t*_d) (C, E); ``kind="l1"``: mean |Δ| of the
    normalised features instead (PromptSRC-style ablation)."""
    if kind == "l1":
        return F.l1_loss(l2norm(t_soft), l2norm(t_hard))
    if kind != "ce":
        raise ValueError(f"unknown pa_loss {kind!r}")
    return alignment_ce(l2norm(t_hard) @ l2norm(t_soft).t(), tau, direction)


def global_similarity(z_g: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
    """Cosine between global image features (B, E) and class text features (C, E) -> (B, C)."""
    return l2norm(z_g) @ l2norm(text).t()


def topk_local_similarity(z_local: torch.Tensor, text: torch.Tensor, k: int, sim: str = "cos") -> torch.Tensor:
    """Eqs. 8-9: per class, the mean of the k largest patch-text similarities. (B, N_l, E), (C, E) -> (B, C).

    ``sim="cos"`` normalises both sides; ``"dot"`` uses raw inner products. k is capped at N_l.
    """
    if sim == "cos":
        z_local, text = l2norm(z_local), l2norm(text)
    elif sim != "dot":
        raise ValueError(f"unknown local_sim {sim!r}")
    s = torch.einsum("bne,ce->bnc", z_local, text)  # (B, N_l, C)
    return s.topk(min(k, s.shape[1]), dim=1).values.mean(dim=1)


def prototype_loss(z_g: torch.Tensor, prototypes: torch.Tensor, targets: torch.Tensor, *, kind: str = "cos",
                   reduction: str = "mean", normalize: bool = True) -> torch.Tensor:
    """L_v (Eq. 7): distance of each global feature (B, E) to its class prototype (C, E).

    ``cos``: 1 - cos(z_g, P[y]); ``l1``: mean over dimensions of |z - P[y]| with z = l2norm(z_g) when ``normalize``
    (prototypes built per image) else raw z_g. Reduced over the batch by ``mean`` or ``sum``.
    """
    p = prototypes[targets].to(z_g.dtype)  # (B, E)
    if kind == "cos":
        per = 1 - F.cosine_similarity(z_g, p, dim=-1)
    elif kind == "l1":
        per = ((l2norm(z_g) if normalize else z_g) - p).abs().mean(-1)
    else:
        raise ValueError(f"unknown v_loss {kind!r}")
    if reduction == "mean":
        return per.mean()
    if reduction == "sum":
        return per.sum()
    raise ValueError(f"unknown v_reduction {reduction!r}")
