"""MPA-FER wiring against an independent float64 composition (the oracle below).

The oracle shares no code with ``MPAFER`` or ``encoders``: its image tower inserts the deep prompts right after the
class token (the VPT layout) instead of appending them, its value path is the last block with a self-only attention
mask, its text tower is open_clip's own transformer, and it composes Eqs. 10-12 itself; only the loss functions (tested
against hand-written loops in ``test_mpa_losses.py``) are shared. Every option of the design is checked, the model
both in float64 (1e-9: a wiring change of any size shows) and in float32.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ferkit.models.mpa_fer import MPAFERConfig, losses

B = 3  # images per batch
TARGETS = torch.tensor([4, 0, 6])


@dataclass
class Terms:
    """Oracle outputs: logits (B, C), the loss terms (floats, absent = None) and their total."""

    logits: torch.Tensor
    global_sim: torch.Tensor
    local_sim: torch.Tensor | None
    parts: dict[str, float]
    total: float


def _patch_tokens(visual: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) -> class + patch tokens with positions (B, 1 + N, W_v)."""
    p = F.conv2d(x, visual.conv1.weight, stride=visual.conv1.stride)  # (B, W_v, g, g)
    p = p.flatten(2).transpose(1, 2)
    cls = visual.class_embedding.view(1, 1, -1).expand(x.shape[0], 1, -1)
    return torch.cat([cls, p], 1) + visual.positional_embedding


def oracle_image(visual: nn.Module, x: torch.Tensor, prompts: torch.Tensor | None, cfg: MPAFERConfig,
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Deep VPT with prompts inserted after the class token. -> z_g (B, E), Z_l (B, N, E)."""
    t = _patch_tokens(visual, x)
    n_patch = t.shape[1] - 1
    blocks = list(visual.transformer.resblocks)
    t = visual.ln_pre(t)
    block_in = t
    for layer, block in enumerate(blocks):
        if prompts is not None:
            p = prompts[layer].expand(x.shape[0], -1, -1)
            if layer == 0 and cfg.vp_first == "before_ln_pre":
                p = visual.ln_pre(p)  # per-token LayerNorm: the same as normalising prompts and tokens together
            block_in = torch.cat([t[:, :1], p, t[:, 1:]], 1)
        else:
            block_in = t
        out = block(block_in)
        t = torch.cat([out[:, :1], out[:, out.shape[1] - n_patch:]], 1)  # drop the prompt outputs
    z = visual.ln_post(t) @ visual.proj
    if cfg.local_feat == "value":  # the last block on its own input patches, each attending only to itself
        patches = block_in[:, block_in.shape[1] - n_patch:]
        self_only = torch.full((n_patch, n_patch), float("-inf"), dtype=x.dtype).fill_diagonal_(0.0)
        return z[:, 0], visual.ln_post(blocks[-1](patches, attn_mask=self_only)) @ visual.proj
    return z[:, 0], z[:, 1:]


def oracle_text(clip: nn.Module, emb: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """open_clip's text tower after the embedding lookup: (n, L, D_t), (n, L) -> (n, E)."""
    x = clip.transformer(emb + clip.positional_embedding, attn_mask=clip.attn_mask)
    x = clip.ln_final(x)[torch.arange(len(tokens)), tokens.argmax(-1)]
    return x @ clip.text_projection


def soft_embeddings(model: nn.Module) -> torch.Tensor:
    """Soft prompt token embeddings (C, L, D_t): the token table with ctx written over positions 1..M."""
    emb = model.clip.token_embedding(model.soft_tokens).clone()
    m = model.config.n_ctx
    emb[:, 1:1 + m] = model.ctx if model.config.csc else model.ctx.unsqueeze(0)
    return emb


def _cos(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(..., E), (C, E) -> (..., C) cosine similarities."""
    return (a / a.norm(dim=-1, keepdim=True)) @ (b / b.norm(dim=-1, keepdim=True)).t()


def oracle_local(z_l: torch.Tensor, text: torch.Tensor, cfg: MPAFERConfig) -> torch.Tensor:
    """Eqs. 8-9 by sorting: mean of the k largest patch similarities per class. -> (B, C)."""
    sims = _cos(z_l, text) if cfg.local_sim == "cos" else z_l @ text.t()  # (B, N, C)
    k = min(cfg.topk, sims.shape[1])
    return sims.sort(dim=1, descending=True).values[:, :k].mean(1)


def oracle(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Terms:
    """Eqs. 10-12 composed from scratch on the model's tensors (use a float64 copy)."""
    cfg, clip = model.config, model.clip
    e_soft = soft_embeddings(model)
    text = oracle_text(clip, e_soft, model.soft_tokens)
    z_g, z_l = oracle_image(clip.visual, x, model.vprompt, cfg)
    g = _cos(z_g, text)
    local = oracle_local(z_l, text, cfg) if cfg.local_align else None
    scale = clip.logit_scale.exp() if cfg.logit_scale == "clip" else cfg.logit_scale
    logits = scale * (g if local is None else g + local)
    parts = {"ce": float(-logits.log_softmax(-1)[torch.arange(len(y)), y].mean())}
    total = parts["ce"]
    if cfg.text_align:
        e_hard = clip.token_embedding(model.hard_tokens)
        t_hard = oracle_text(clip, e_hard, model.hard_tokens)
        parts["ta"] = float(losses.token_alignment_loss(e_soft, model.soft_tokens, e_hard, model.hard_tokens,
                                                        tau=cfg.tau, pool=cfg.ta_pool, direction=cfg.align_dir))
        parts["pa"] = float(losses.prompt_alignment_loss(text, t_hard, tau=cfg.tau, direction=cfg.align_dir,
                                                         kind=cfg.pa_loss))
        total += cfg.beta * (parts["ta"] + parts["pa"])
    if cfg.proto_align:
        parts["v"] = float(losses.prototype_loss(z_g, model.prototypes.to(z_g.dtype), y, kind=cfg.v_loss,
                                                 reduction=cfg.v_reduction,
                                                 normalize=cfg.proto_norm == "per_image"))
        total += cfg.gamma * parts["v"]
    return Terms(logits, g, local, parts, total)


def _prepared(make_model, **overrides) -> nn.Module:
    """A tiny-CLIP model whose every path counts: prompts N(0, 1), random prototypes, non-unit loss weights, CLIP
    LayerNorms with random affine parameters (with the init's 1 / 0, normalising twice equals normalising once)."""
    overrides.setdefault("beta", 0.7)
    overrides.setdefault("gamma", 1.3)
    model = make_model(**overrides)
    g = torch.Generator().manual_seed(11)
    with torch.no_grad():
        model.ctx.copy_(torch.randn(model.ctx.shape, generator=g))
        if model.vprompt is not None:
            model.vprompt.copy_(torch.randn(model.vprompt.shape, generator=g))
        for ln in (m for m in model.clip.modules() if isinstance(m, nn.LayerNorm)):
            ln.weight.copy_(1 + 0.3 * torch.randn(ln.weight.shape, generator=g))
            ln.bias.copy_(0.3 * torch.randn(ln.bias.shape, generator=g))
    model.set_prototypes(F.normalize(torch.randn(model.num_classes, model.embed_dim, generator=g), dim=-1))
    return model


def _images() -> torch.Tensor:
    return torch.randn(B, 3, 224, 224, generator=torch.Generator().manual_seed(5))


def _check(model: nn.Module, x: torch.Tensor, want: Terms, rel: float) -> None:
    """Model logits, parts and total loss vs the oracle, each within rel * (1 + |oracle|)."""
    model.eval()
    with torch.no_grad():
        logits = model(x.to(model.ctx.dtype))
        loss, train_logits, parts = model.training_loss(x.to(model.ctx.dtype), TARGETS)
    tol = rel * (1 + want.logits.abs().max().item())
    assert (logits.double() - want.logits).abs().max().item() <= tol
    assert (train_logits.double() - want.logits).abs().max().item() <= tol
    assert set(parts) == set(want.parts)
    for k, v in want.parts.items():
        assert parts[k] == pytest.approx(v, rel=rel, abs=rel), k
    assert float(loss) == pytest.approx(want.total, rel=rel, abs=rel)


OPTIONS = [
    {},
    {"local_align": False},
    {"ta_pool": "position"},
    {"align_dir": "soft_anchor"},
    {"align_dir": "symmetric", "tau": 0.3},
    {"pa_loss": "l1"},
    {"logit_scale": 1.0},
    {"local_feat": "value"},
    {"local_sim": "dot"},
    {"topk": 4},
    {"v_loss": "l1", "v_reduction": "sum"},
    {"v_loss": "l1", "proto_norm": "raw_mean"},
    {"csc": True},
    {"vp_first": "before_ln_pre"},
    {"vp_first": "before_ln_pre", "local_feat": "value"},
    {"n_vprompt": 0},
    {"text_align": False},
    {"proto_align": False},
    {"soft_suffix": "hard", "text_align": False, "hard_prompt": "h2"},
    {"hard_prompt": "h1", "class_words": "adjective"},
]


@pytest.mark.parametrize("overrides", OPTIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "default")
def test_logits_and_loss_equal_the_oracle_float64(make_model, overrides):
    """The model run in float64 equals the float64 oracle to 1e-9: logits, every loss term and the total."""
    model = _prepared(make_model, **overrides).double()
    x = _images().double()
    with torch.no_grad():
        want = oracle(model, x, TARGETS)
    _check(model, x, want, rel=1e-9)


@pytest.mark.parametrize("overrides", [{}, {"local_feat": "value", "vp_first": "before_ln_pre"}])
def test_float32_model_close_to_the_float64_oracle(make_model, overrides):
    model = _prepared(make_model, **overrides)
    x = _images()
    with torch.no_grad():
        want = oracle(copy.deepcopy(model).double(), x.double(), TARGETS)
    _check(model, x, want, rel=1e-4)


def test_every_term_matters(make_model):
    """The oracle's checks have power: each term is large enough that dropping or mis-weighting it shows."""
    model = _prepared(make_model).double()
    with torch.no_grad():
        t = oracle(model, _images().double(), TARGETS)
        soft = oracle(_prepared(make_model, align_dir="soft_anchor").double(), _images().double(), TARGETS)
    assert t.local_sim.abs().min() > 0.05  # the top-k local term moves every logit
    assert min(t.parts.values()) > 1e-2  # ce, ta, pa, v all non-negligible
    assert abs(t.parts["ta"] - t.parts["pa"]) > 1e-3 and abs(t.parts["v"] - t.parts["pa"]) > 1e-3
    assert abs(soft.parts["ta"] - t.parts["ta"]) > 1e-3  # the anchor's orientation matters


@pytest.mark.slow
def test_options_change_what_they_should(make_model):
    """Each image-side option changes the features (so its oracle check is not vacuous)."""
    x = _images().double()
    base = _prepared(make_model).double()
    with torch.no_grad():
        ref = oracle(base, x, TARGETS).logits
        for overrides in ({"local_feat": "value"}, {"vp_first": "before_ln_pre"}, {"local_sim": "dot"}, {"topk": 4}):
            other = oracle(_prepared(make_model, **overrides).double(), x, TARGETS).logits
            assert (other - ref).abs().max() > 1e-3, overrides


def test_prompt_outputs_are_dropped_and_patch_count_kept(make_model):
    model = _prepared(make_model).double()
    with torch.no_grad():
        z_g, z_l = model.encode_image(_images().double())
    assert z_g.shape == (B, model.embed_dim) and z_l.shape == (B, 49, model.embed_dim)
    assert math.isfinite(float(z_l.sum()))
