"""POSTER++: equivalence with the official computation, window attention, variants, frozen parts, determinism."""

from __future__ import annotations

import pytest
import torch

import ferkit
from ferkit.models.poster_v2.fusion import CrossFusion, WindowCrossAttention, relative_position_index
from ferkit.nn.optimize import for_inference
from tests.reference import poster_v2_official as ref

POSTER_MODELS = ferkit.list_models("poster_v2*")
LOGIT_ATOL = 1e-5  # float32 vs the float64 reference: measured 0.9-1.8e-6 on logits of magnitude ~1
STAGE_REL = 2e-6  # one stage in float32 fed the reference's inputs: measured 2-5e-7 of the stage's output scale


@pytest.fixture(scope="module")
def official_sd7():
    return ref.random_official_state_dict(7, seed=1)


@pytest.fixture(scope="module")
def model7(official_sd7):
    return ferkit.create_model("poster_v2", checkpoint={"state_dict": official_sd7}).eval()


@pytest.fixture(scope="module")
def reference_run(official_sd7):
    """Official computation in float64 on a fixed batch, with intermediates."""
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        return x, ref.intermediates(x.double(), official_sd7)


def _close(got: torch.Tensor, want: torch.Tensor, rel: float = 1e-5) -> None:
    """Element-wise |got - want| <= rel * max|want| (features grow to O(100) deep in IR-50)."""
    err = (got.double() - want.double()).abs().max().item()
    assert err <= rel * want.abs().max().item(), f"max abs error {err} vs scale {want.abs().max().item()}"


def test_logits_equal_official_float64(model7, reference_run):
    x, r = reference_run
    with torch.no_grad():
        got = model7(x)
    assert got.shape == (2, 7)
    assert (got.double() - r["logits"]).abs().max().item() <= LOGIT_ATOL
    assert (r["logits"][0] - r["logits"][1]).abs().max() > 1e-2  # the comparison has power


@pytest.mark.slow
@pytest.mark.parametrize("size", [(100, 100), (224, 180)])
def test_logits_equal_official_other_sizes(model7, official_sd7, size):
    x = torch.randn(1, 3, *size)
    with torch.no_grad():
        assert (model7(x).double() - ref.forward(x.double(), official_sd7)).abs().max().item() <= LOGIT_ATOL


def test_intermediates_equal_official(model7, reference_run):
    x, r = reference_run
    with torch.no_grad():
        img, lm = model7.streams(x)
        for s in range(3):
            _close(lm[s], r["landmark"][s])
            _close(img[s], r["image"][s])
            _close(model7.fusion[str(s)](img[s], lm[s]), r["fusion"][s])
        tokens = model7.tokens(x)
        _close(tokens, r["tokens"])
        vit = model7.fuser(tokens)
        _close(vit, r["vit"])
        _close(model7.se(vit), r["se"])
        _close(model7.head(model7.se(vit)), r["logits"])


def test_each_stage_equals_official_on_the_reference_inputs(model7, reference_run):
    """Every stage in float32 fed the float64 reference's own inputs: errors do not accumulate, so the tolerance can
    be ~5x the measured float32 error (a LayerNorm eps or a GELU variant shows)."""
    _, r = reference_run
    f = lambda t: t.float()  # noqa: E731
    with torch.no_grad():
        for s in range(3):
            _close(model7.fusion[str(s)](f(r["image"][s]), f(r["landmark"][s])), r["fusion"][s], STAGE_REL)
        tokens = [model7.tokenize[str(s)](f(r["fusion"][s])).flatten(2).transpose(1, 2) for s in range(3)]
        _close(torch.cat(tokens, 1), r["tokens"], 10 * STAGE_REL)  # 768-wide 3x3 convs: longer sums
        _close(model7.fuser(f(r["tokens"])), r["vit"], STAGE_REL)
        _close(model7.se(f(r["vit"])), r["se"], STAGE_REL)
        _close(model7.head(f(r["se"])), r["logits"], STAGE_REL)


@pytest.mark.slow
def test_float64_model_equals_official_to_rounding(official_sd7):
    """ferkit's model run in float64 equals the float64 reference to 1e-10: any change of the computation shows."""
    model = ferkit.create_model("poster_v2", checkpoint={"state_dict": official_sd7}).eval().double()
    x = torch.randn(1, 3, 112, 112, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    with torch.no_grad():
        assert (model(x) - ref.forward(x, official_sd7)).abs().max().item() <= 1e-10


@pytest.mark.slow
def test_cross_attention_path_matters(model7, official_sd7):
    """With the official gamma init (1e-5) a broken attention would go unnoticed; our random weights make it count:
    zeroing a position table or a gamma moves the reference's logits, and ferkit's move with them."""
    x = torch.randn(1, 3, 112, 112)
    with torch.no_grad():
        base = ref.forward(x.double(), official_sd7)
        assert (model7(x).double() - base).abs().max() <= LOGIT_ATOL
        for key, ours in (("attn1.relative_position_bias_table", "fusion.0.attn.relative_position_bias_table"),
                          ("ffn1.gamma1", "fusion.0.gamma1"), ("ffn3.gamma1", "fusion.2.gamma1")):
            sd2 = dict(official_sd7)
            sd2[key] = torch.zeros_like(sd2[key])
            want = ref.forward(x.double(), sd2)
            assert (want - base).abs().max() > 1e-3, key
            param = model7.get_parameter(ours)
            saved = param.clone()
            try:
                param.zero_()
                assert (model7(x).double() - want).abs().max() <= LOGIT_ATOL, key
            finally:
                param.copy_(saved)


@pytest.mark.slow
@pytest.mark.parametrize("prefix", ["", "module."])
def test_eight_classes_and_module_prefix(prefix):
    sd = ref.random_official_state_dict(8, seed=2)
    model = ferkit.create_model("poster_v2", checkpoint={prefix + k: v for k, v in sd.items()}).eval()
    assert model.num_classes == 8 and model.label_names[-1] == "contempt"
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        assert (model(x).double() - ref.forward(x.double(), sd)).abs().max() <= LOGIT_ATOL


def test_relative_position_index_formula():
    for w in (1, 2, 3, 7):
        assert torch.equal(relative_position_index(w), ref._rel_index(w))


def _direct_window_attention(q_map, x_map, attn: WindowCrossAttention, w: int) -> torch.Tensor:
    """Loop over windows, heads and token pairs in float64: out (B, H, W, C)."""
    b, h, wd, c = x_map.shape
    heads, d = attn.num_heads, c // attn.num_heads
    kw, kb = attn.kv.weight.double(), attn.kv.bias.double()
    table = attn.relative_position_bias_table.double()
    out = torch.zeros(b, h, wd, c, dtype=torch.float64)
    for bi in range(b):
        for wy in range(0, h, w):
            for wx in range(0, wd, w):
                cells = [(wy + i, wx + j) for i in range(w) for j in range(w)]
                q = torch.stack([q_map[bi, y, x] for y, x in cells]).double()  # (N, C)
                xs = torch.stack([x_map[bi, y, x] for y, x in cells]).double()
                kv = xs @ kw.t() + kb
                k, v = kv[:, :c], kv[:, c:]
                merged = torch.zeros(len(cells), c, dtype=torch.float64)
                for hh in range(heads):
                    sl = slice(hh * d, (hh + 1) * d)
                    logits = (q[:, sl] @ k[:, sl].t()) / d**0.5
                    for i, (yi, xi) in enumerate(cells):
                        for j, (yj, xj) in enumerate(cells):
                            dy, dx = (yi - wy) - (yj - wy), (xi - wx) - (xj - wx)
                            logits[i, j] += table[(dy + w - 1) * (2 * w - 1) + dx + w - 1, hh]
                    merged[:, sl] = torch.softmax(logits, -1) @ v[:, sl]
                o = merged @ attn.proj.weight.double().t() + attn.proj.bias.double()
                for n, (y, x) in enumerate(cells):
                    out[bi, y, x] = o[n]
    return out


@pytest.mark.parametrize("map_size,window", [(6, 6), (6, 3), (4, 2)])
def test_window_cross_attention_against_direct_float64(map_size, window):
    torch.manual_seed(0)
    block = CrossFusion(16, 2, map_size, window, layer_scale=1.0).eval()
    with torch.no_grad():
        block.attn.relative_position_bias_table.normal_(0, 1.0)
    img, lm = torch.randn(2, 16, map_size, map_size), torch.randn(2, 16, map_size, map_size)
    with torch.no_grad():
        x, qw, xw = block.windows(img, lm)
        from ferkit.models.poster_v2.fusion import window_merge

        got = window_merge(block.attn(qw, xw), window, map_size, map_size)
        want = _direct_window_attention(lm.permute(0, 2, 3, 1), x, block.attn, window)
    torch.testing.assert_close(got.double(), want, atol=1e-5, rtol=1e-5)


def test_attention_map_rows_sum_to_one():
    block = CrossFusion(16, 2, 4, 2).eval()
    img, lm = torch.randn(1, 16, 4, 4), torch.randn(1, 16, 4, 4)
    with torch.no_grad():
        _, qw, xw = block.windows(img, lm)
        a = block.attn.attention_map(qw, xw)
    assert a.shape == (4, 2, 4, 4)
    torch.testing.assert_close(a.sum(-1), torch.ones(4, 2, 4))


@pytest.mark.parametrize("name", [n if n in ("poster_v2", "poster_v2_open") else pytest.param(n, marks=pytest.mark.slow)
                                  for n in POSTER_MODELS])  # the full and the default model stay in the quick run
def test_every_variant_forward_backward(name):
    model = ferkit.create_model(name).train()
    x = torch.randn(1, 3, 112, 112)
    out = model(x)
    assert out.shape == (1, 7) and torch.isfinite(out).all()
    out.logsumexp(1).sum().backward()
    assert all(p.grad is None for p in model.landmark_net.parameters()), "frozen landmark net got gradients"
    used = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not used, f"trainable parameters without gradient: {used[:5]}"


@pytest.mark.slow
def test_variant_token_counts():
    x = torch.randn(1, 3, 112, 112)
    with torch.no_grad():
        assert ferkit.create_model("poster_v2_single_scale").eval().tokens(x).shape == (1, 49, 768)
        assert ferkit.create_model("poster_v2_no_cross_fusion").eval().tokens(x).shape == (1, 294, 768)
        assert ferkit.create_model("poster_v2", window_size=(7, 7, 7)).eval().tokens(x).shape == (1, 147, 768)
    assert len(ferkit.create_model("poster_v2_vit6").fuser.blocks) == 6


@pytest.mark.slow
def test_landmark_batchnorm_modes():
    x = torch.randn(4, 3, 112, 112)
    frozen = ferkit.create_model("poster_v2").train()
    assert not frozen.landmark_net.training and frozen.image_net.training
    before = frozen.landmark_net.conv1.bn.running_mean.clone()
    frozen.landmark_net(x)
    assert torch.equal(before, frozen.landmark_net.conv1.bn.running_mean)

    official = ferkit.create_model("poster_v2", landmark_bn_mode="train").train()
    assert official.landmark_net.training
    before = official.landmark_net.conv1.bn.running_mean.clone()
    official.landmark_net(x)
    assert not torch.equal(before, official.landmark_net.conv1.bn.running_mean)


@pytest.mark.slow
def test_determinism():
    torch.manual_seed(5)
    a = ferkit.create_model("poster_v2").eval()
    torch.manual_seed(5)
    b = ferkit.create_model("poster_v2").eval()
    x = torch.randn(1, 3, 112, 112)
    with torch.no_grad():
        ya = a(x)
        assert torch.equal(ya, b(x))
        assert torch.equal(ya, a(x))


def test_for_inference_matches(model7):
    x = torch.randn(1, 3, 224, 224)
    fast = for_inference(model7)
    with torch.no_grad():
        torch.testing.assert_close(fast(x), model7(x), atol=1e-4, rtol=1e-4)
    assert model7.landmark_net.conv1.bn.__class__.__name__ == "BatchNorm2d"  # original untouched


def test_resize_is_legacy_nearest():
    x = torch.randn(1, 3, 224, 180)
    y = ferkit.models.poster_v2.PosterV2.working_resolution(x)
    rows = torch.clamp((torch.arange(112) * 224 / 112).floor().long(), max=223)
    cols = torch.clamp((torch.arange(112) * 180 / 112).floor().long(), max=179)
    assert torch.equal(y, x[:, :, rows][:, :, :, cols])


def test_config_errors():
    with pytest.raises(ferkit.errors.ConfigError, match="window_size"):
        ferkit.create_model("poster_v2", window_size=(5, 14, 7))
    with pytest.raises(ferkit.errors.ConfigError, match="unknown config key 'vit_dpeth'"):
        ferkit.create_model("poster_v2", vit_dpeth=4)
    with pytest.raises(ValueError, match="unknown model"):
        ferkit.create_model("poster_v3")


def test_num_classes_and_labels():
    m = ferkit.create_model("poster_v2", num_classes=8)
    assert m.head.out_features == 8 and m.label_names == ferkit.labels.DATASET_ORDERS["affectnet8"]
    m = ferkit.create_model("poster_v2", label_names="caer_s")
    assert m.label_names[0] == "anger"
    with pytest.raises(ValueError):
        ferkit.create_model("poster_v2", num_classes=8, label_names="rafdb")
