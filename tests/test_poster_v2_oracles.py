"""POSTER++ options against an independent statement of each (``tests/reference/poster_v2_options.py``): the Table 8
ablations, the Fig. 6 depths, both readings of W-MCSA windows and the projected query, in float64 to 1e-10 on the
same stream maps; every ablation also differs from the full model. The streams are inputs here (they are checked
against the official re-statement in ``test_poster_v2.py``), so the token fuser can be narrow and the tests fast.
"""

from __future__ import annotations

import copy
import functools

import pytest
import torch
from torch import nn

import ferkit
from ferkit.models.poster_v2 import PosterV2
from tests.reference.poster_v2_options import Spec, logits

EMBED = 64  # token-fuser width for these tests; no option depends on it
B = 2

VARIANTS = [  # (registered name or "poster_v2", extra options, what it means)
    ("poster_v2", {}, Spec()),
    ("poster_v2_single_scale", {}, Spec(scales=(2,))),
    ("poster_v2_no_vit", {}, Spec(use_vit=False)),
    ("poster_v2_vanilla_ca", {}, Spec(vanilla=True)),
    ("poster_v2_no_cross_fusion", {}, Spec(cross_fusion=False)),
    ("poster_v2_vit4", {}, Spec(vit_depth=4)),
    ("poster_v2", {"window_size": (7, 7, 7)}, Spec(windows=(7, 7, 7))),
    ("poster_v2", {"window_size": (14, 7, 7), "window_query": "shared"}, Spec(windows=(14, 7, 7), shared_query=True)),
    ("poster_v2", {"window_size": (7, 7, 7), "window_query": "shared"}, Spec(windows=(7, 7, 7), shared_query=True)),
    ("poster_v2", {"query_proj": True}, Spec(query_proj=True)),
    ("poster_v2", {"vit_heads": 4}, Spec(vit_heads=4)),
    ("poster_v2_no_vit", {"cross_fusion": False}, Spec(use_vit=False, cross_fusion=False)),
]
ABLATIONS = ["poster_v2_single_scale", "poster_v2_no_vit", "poster_v2_vanilla_ca", "poster_v2_no_cross_fusion",
             "poster_v2_vit4"]


def stream_maps(seed: int = 0) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Random float64 image and landmark maps (B, C_s, M_s, M_s) for C = 64/128/256, M = 28/14/7."""
    g = torch.Generator().manual_seed(seed)
    img = [torch.randn(B, c, m, m, generator=g, dtype=torch.float64) for c, m in ((64, 28), (128, 14), (256, 7))]
    lm = [torch.randn(B, c, m, m, generator=g, dtype=torch.float64) for c, m in ((64, 28), (128, 14), (256, 7))]
    return img, lm


def randomize_(model: nn.Module, seed: int) -> nn.Module:
    """Weights that make every path count: fan-in scaled matrices, gammas U(0.5, 1), position tables N(0, 1), norm
    weights 1 + N(0, 0.1), biases N(0, 0.1). The streams are left alone (their maps are inputs here)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.startswith(("landmark_net.", "image_net.")):
                continue
            r = torch.randn(p.shape, generator=g)
            if "gamma" in name:
                p.copy_(0.5 + 0.5 * torch.rand(p.shape, generator=g))
            elif name.endswith("relative_position_bias_table"):
                p.copy_(r)
            elif name.endswith(("cls_token", "pos_embed")):
                p.copy_(0.5 * r)
            elif p.ndim >= 2:
                p.copy_(r * (p[0].numel()) ** -0.5)
            elif name.endswith("weight"):
                p.copy_(1 + 0.1 * r)
            else:
                p.copy_(0.1 * r)
    return model


@functools.cache
def _template(name: str, seed: int, options: tuple) -> PosterV2:
    return randomize_(ferkit.create_model(name, embed_dim=EMBED, **dict(options)), seed).eval().double()


def build(name: str, seed: int = 1, **options) -> PosterV2:
    """A float64 model with randomized weights (a copy of a cached one: the streams' init is the slow part)."""
    return copy.deepcopy(_template(name, seed, tuple(sorted(options.items()))))


def run(model: PosterV2, img: list[torch.Tensor], lm: list[torch.Tensor]) -> torch.Tensor:
    """The model's logits (B, K) with its streams replaced by the given maps."""
    model.streams = lambda x: (list(img), list(lm))  # instance attribute: shadows the method
    with torch.no_grad():
        return model(torch.zeros(B, 3, 112, 112, dtype=torch.float64))


def _ids(v) -> str:
    return v[0] + "".join(f",{k}={val}" for k, val in v[1].items())


@pytest.mark.parametrize("name,options,spec", [v if v[0] == "poster_v2" and not v[1] else
                                               pytest.param(*v, marks=pytest.mark.slow) for v in VARIANTS],
                         ids=[_ids(v) for v in VARIANTS])  # the quick run keeps the full model
def test_variant_equals_its_statement(name: str, options: dict, spec: Spec) -> None:
    img, lm = stream_maps()
    model = build(name, **options)
    with torch.no_grad():
        want = logits(img, lm, model.state_dict(), spec)
    got = run(model, img, lm)
    assert want.abs().max() > 0.1  # the comparison has power
    assert (got - want).abs().max().item() <= 1e-10 * (1 + want.abs().max().item())


def _shared_with(full: nn.Module, other: nn.Module) -> nn.Module:
    """Copy every tensor of ``full`` that ``other`` has with the same shape (the ablation keeps only its own)."""
    own = other.state_dict()
    other.load_state_dict({k: v for k, v in full.state_dict().items() if k in own and own[k].shape == v.shape},
                          strict=False)
    return other


@pytest.mark.slow
@pytest.mark.parametrize("name", ABLATIONS)
def test_ablation_differs_from_the_full_model(name: str) -> None:
    """With every shared weight equal, each ablation's logits differ from the full model's (by > 1 % of their scale)."""
    img, lm = stream_maps()
    full = run(build("poster_v2"), img, lm)
    ablated = run(_shared_with(build("poster_v2"), build(name, seed=2)), img, lm)
    assert (ablated - full).abs().max() > 0.01 * full.abs().max()  # measured 3.5 % (vanilla) to 140 % (no ViT)


@pytest.mark.slow
def test_window_readings() -> None:
    """Shared and per-window queries agree when the window is the whole map and differ when it is smaller."""
    img, lm = stream_maps()
    base = build("poster_v2")
    whole = run(_shared_with(base, build("poster_v2", window_query="shared")), img, lm)
    assert (whole - run(base, img, lm)).abs().max() <= 1e-12
    per = run(_shared_with(base, build("poster_v2", window_size=(7, 7, 7))), img, lm)
    shared = run(_shared_with(base, build("poster_v2", window_size=(7, 7, 7), window_query="shared")), img, lm)
    assert (per - shared).abs().max() > 0.01 * per.abs().max()  # measured 2 %


def test_shared_query_is_the_pooled_landmark_window() -> None:
    """W-MCSA (paper Sec. 3.4): every image window of a scale gets the same query, the area-pooled landmark map."""
    fusion = build("poster_v2", window_size=(14, 7, 7), window_query="shared").fusion["0"]
    img, lm = stream_maps()
    _, qw, xw = fusion.windows(img[0], lm[0])
    assert qw.shape == xw.shape == (B * 4, 14 * 14, 64)
    pooled = lm[0].reshape(B, 64, 14, 2, 14, 2).mean((3, 5)).flatten(2).transpose(1, 2)  # (B, 196, 64)
    for b in range(B):
        for w in range(4):
            torch.testing.assert_close(qw[4 * b + w], pooled[b], rtol=0, atol=1e-12)


@pytest.mark.slow
def test_single_scale_streams_are_the_full_models_last_scale() -> None:
    """"w/o multi-scale" fuses the last scale of the same streams (after its ``image_down``)."""
    torch.manual_seed(0)
    full = ferkit.create_model("poster_v2", embed_dim=EMBED).eval()
    single = _shared_with(full, ferkit.create_model("poster_v2_single_scale", embed_dim=EMBED)).eval()
    x = torch.randn(1, 3, 112, 112)
    with torch.no_grad():
        (img_f, lm_f), (img_s, lm_s) = full.streams(x), single.streams(x)
    assert torch.equal(img_f[2], img_s[2]) and torch.equal(lm_f[2], lm_s[2])
    assert list(single.image_down) == ["2"] and single.token_counts == [49]


def test_window_query_option_is_validated() -> None:
    with pytest.raises(ferkit.errors.ConfigError, match="window_query"):
        ferkit.create_model("poster_v2", window_query="global")
