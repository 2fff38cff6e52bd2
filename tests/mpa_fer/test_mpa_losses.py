"""MPA-FER losses against direct float64 computations written independently (loops, explicit softmax)."""

from __future__ import annotations

import math

import pytest
import torch

from ferkit.models.mpa_fer import losses


def _cos(a, b):
    return float(a @ b / (a.norm() * b.norm()))


def _tokens(eots, length=12):
    """Token ids with SOT at 0, filler ids, EOT (the largest id) at each given position."""
    t = torch.zeros(len(eots), length, dtype=torch.long)
    for i, e in enumerate(eots):
        t[i, 0] = 49406
        t[i, 1:e] = torch.arange(1, e) + 100
        t[i, e] = 49407
    return t


def _ce_rows(sim, tau):
    """Mean over rows d of -log softmax(sim[d] / tau)[d], by hand."""
    total = 0.0
    for d in range(len(sim)):
        z = [sim[d][c] / tau for c in range(len(sim[d]))]
        total += -(z[d] - math.log(sum(math.exp(v) for v in z)))
    return total / len(sim)


def test_content_mean_drops_sot_eot_and_padding():
    emb = torch.randn(3, 12, 5, dtype=torch.float64)
    tok = _tokens([4, 7, 2])
    got = losses.content_mean(emb, tok)
    for i, e in enumerate([4, 7, 2]):
        assert torch.allclose(got[i], emb[i, 1:e].mean(0))


@pytest.mark.parametrize("direction", ["hard_anchor", "soft_anchor", "symmetric"])
def test_token_alignment_mean_pool(direction):
    torch.manual_seed(1)
    e_soft, e_hard = torch.randn(4, 12, 6, dtype=torch.float64), torch.randn(4, 12, 6, dtype=torch.float64)
    ts, th = _tokens([5, 5, 6, 5]), _tokens([9, 8, 10, 7])
    tau = 0.07
    soft = [e_soft[c, 1:int(ts[c].argmax())].mean(0) for c in range(4)]
    hard = [e_hard[d, 1:int(th[d].argmax())].mean(0) for d in range(4)]
    sim = [[_cos(hard[d], soft[c]) for c in range(4)] for d in range(4)]  # rows: hard anchors
    simt = [list(r) for r in zip(*sim)]
    want = {"hard_anchor": _ce_rows(sim, tau), "soft_anchor": _ce_rows(simt, tau),
            "symmetric": (_ce_rows(sim, tau) + _ce_rows(simt, tau)) / 2}[direction]
    got = losses.token_alignment_loss(e_soft, ts, e_hard, th, tau=tau, pool="mean", direction=direction)
    assert abs(float(got) - want) < 1e-9


def test_token_alignment_position_pool():
    torch.manual_seed(2)
    e_soft, e_hard = torch.randn(3, 12, 6, dtype=torch.float64), torch.randn(3, 12, 6, dtype=torch.float64)
    ts, th = _tokens([5, 6, 5]), _tokens([8, 6, 7])
    p = 8  # largest EOT index
    sim = [[sum(_cos(e_hard[d, q], e_soft[c, q]) for q in range(1, p)) / (p - 1) for c in range(3)] for d in range(3)]
    got = losses.token_alignment_loss(e_soft, ts, e_hard, th, tau=0.5, pool="position")
    assert abs(float(got) - _ce_rows(sim, 0.5)) < 1e-9


def test_prompt_alignment_ce_and_l1():
    torch.manual_seed(3)
    t_soft, t_hard = torch.randn(5, 8, dtype=torch.float64), torch.randn(5, 8, dtype=torch.float64)
    sim = [[_cos(t_hard[d], t_soft[c]) for c in range(5)] for d in range(5)]
    assert abs(float(losses.prompt_alignment_loss(t_soft, t_hard, tau=0.07)) - _ce_rows(sim, 0.07)) < 1e-9
    l1 = sum(float((t_soft[c] / t_soft[c].norm() - t_hard[c] / t_hard[c].norm()).abs().sum()) for c in range(5)) / 40
    assert abs(float(losses.prompt_alignment_loss(t_soft, t_hard, tau=0.07, kind="l1")) - l1) < 1e-9


def test_topk_local_similarity_matches_sorting():
    torch.manual_seed(4)
    z, text = torch.randn(2, 20, 6, dtype=torch.float64), torch.randn(3, 6, dtype=torch.float64)
    for k, sim in ((16, "cos"), (4, "cos"), (5, "dot")):
        got = losses.topk_local_similarity(z, text, k, sim)
        for b in range(2):
            for c in range(3):
                vals = [(_cos(z[b, i], text[c]) if sim == "cos" else float(z[b, i] @ text[c])) for i in range(20)]
                want = sum(sorted(vals, reverse=True)[:k]) / k
                assert abs(float(got[b, c]) - want) < 1e-9
    # k >= N_l: the plain mean over all patches
    mean = torch.nn.functional.normalize(z, dim=-1) @ torch.nn.functional.normalize(text, dim=-1).t()
    assert torch.allclose(losses.topk_local_similarity(z, text, 100), mean.mean(1))


def test_prototype_loss_variants():
    torch.manual_seed(5)
    z = torch.randn(4, 6, dtype=torch.float64)
    protos = torch.nn.functional.normalize(torch.randn(3, 6, dtype=torch.float64), dim=-1)
    y = torch.tensor([2, 0, 2, 1])
    cos = [1 - _cos(z[i], protos[y[i]]) for i in range(4)]
    l1 = [float((z[i] / z[i].norm() - protos[y[i]]).abs().mean()) for i in range(4)]
    raw = [float((z[i] - protos[y[i]]).abs().mean()) for i in range(4)]
    assert abs(float(losses.prototype_loss(z, protos, y)) - sum(cos) / 4) < 1e-9
    assert abs(float(losses.prototype_loss(z, protos, y, reduction="sum")) - sum(cos)) < 1e-9
    assert abs(float(losses.prototype_loss(z, protos, y, kind="l1")) - sum(l1) / 4) < 1e-9
    assert abs(float(losses.prototype_loss(z, protos, y, kind="l1", normalize=False)) - sum(raw) / 4) < 1e-9


def test_unknown_options_raise():
    with pytest.raises(ValueError, match="align_dir"):
        losses.alignment_ce(torch.eye(2), 0.1, "sideways")
    with pytest.raises(ValueError, match="local_sim"):
        losses.topk_local_similarity(torch.randn(1, 3, 2), torch.randn(2, 2), 2, "l2")
