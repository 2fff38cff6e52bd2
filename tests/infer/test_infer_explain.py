"""Explanations: attention maps on hand-built cases and against a float64 re-statement, gradient maps against finite
differences and where the input cannot matter, Grad-CAM shape, overlays on a real photo."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from ferkit.explain import attention_maps, combine, explain, gradient_map
from ferkit.explain.overlay import colorize, paste
from ferkit.models.poster_v2.explain import attention_maps as poster_attention_maps
from ferkit.models.poster_v2.fusion import CrossFusion
from tests.infer._helpers import StubDetector

PATTERN = torch.tensor([1.0, -1.0] * 4)  # LayerNorm of this vector is itself (mean 0, variance 1)


class HandBuilt(nn.Module):
    """One cross-fusion scale whose attention is known: k = LN(image), position bias 0, queries = 10 * PATTERN;
    image tokens are 0 except PATTERN at ``hot`` positions, so every query attends (almost) only to them."""

    def __init__(self, side: int, window: int, hot: list[tuple[int, int]]):
        super().__init__()
        self.scales = (2,)
        self.fusion = nn.ModuleDict({"2": CrossFusion(8, 2, side, window)})
        attn = self.fusion["2"].attn
        with torch.no_grad():
            attn.kv.weight.zero_()
            attn.kv.weight[:8] = torch.eye(8)
            attn.kv.bias.zero_()
            attn.relative_position_bias_table.zero_()
        self.img = torch.zeros(1, 8, side, side)
        for r, c in hot:
            self.img[0, :, r, c] = PATTERN
        self.lm = (10 * PATTERN).view(1, 8, 1, 1).expand(1, 8, side, side).clone()

    def streams(self, x):
        return [None, None, self.img], [None, None, self.lm]


def test_attention_map_hand_built_global_window():
    maps = poster_attention_maps(HandBuilt(7, 7, [(2, 5)]), torch.zeros(1))
    m = maps[2][0]
    assert m.shape == (7, 7) and m[2, 5] > 0.99 and m.sum() == pytest.approx(1.0, abs=1e-5)
    assert m.flatten().topk(2).values[1] < 1e-3


def test_attention_map_hand_built_windows_land_in_place():
    """4x4 map, 2x2 windows: hot tokens in the top-right and bottom-left windows; the other two windows have no
    hot token and attend uniformly (0.25 each)."""
    m = poster_attention_maps(HandBuilt(4, 2, [(0, 3), (3, 0)]), torch.zeros(1))[2][0].numpy()
    expected = np.zeros((4, 4))
    expected[0, 3] = expected[3, 0] = 1.0
    expected[:2, :2] = expected[2:, 2:] = 0.25
    np.testing.assert_allclose(m, expected, atol=2e-3)


@pytest.mark.slow
def test_poster_attention_against_float64_restatement(poster, photos):
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(3))
    maps = attention_maps(poster, x)
    assert {s: tuple(m.shape) for s, m in maps.items()} == {0: (1, 28, 28), 1: (1, 14, 14), 2: (1, 7, 7)}
    for m in maps.values():  # one window per map (official): each map is a distribution over positions
        assert float(m.sum()) == pytest.approx(1.0, abs=1e-4)
    with torch.no_grad():
        img, lm = poster.streams(x)
    with torch.no_grad():
        ref = _attention_reference(poster.fusion["2"], img[2][0], lm[2][0])
    np.testing.assert_allclose(maps[2][0].flatten().numpy(), ref, atol=1e-5)
    mean = combine(maps, "mean")
    assert mean.shape == (1, 28, 28) and float(mean.min()) >= 0 and float(mean.max()) <= 1


def _attention_reference(f, img, lm) -> np.ndarray:
    """Float64, loop over heads, explicit LayerNorm / key projection / Swin bias index: (49,) mean attention."""
    d = torch.float64
    t = img.permute(1, 2, 0).reshape(49, 256).to(d)  # image tokens, row-major
    t = (t - t.mean(-1, keepdim=True)) / torch.sqrt(t.var(-1, unbiased=False, keepdim=True) + f.norm.eps)
    t = t * f.norm.weight.to(d) + f.norm.bias.to(d)
    k = t @ f.attn.kv.weight[:256].T.to(d) + f.attn.kv.bias[:256].to(d)  # (49, 256)
    q = lm.permute(1, 2, 0).reshape(49, 256).to(d)
    table = f.attn.relative_position_bias_table.to(d)  # ((2*7-1)^2, heads)
    ys, xs = np.divmod(np.arange(49), 7)
    idx = (ys[:, None] - ys[None] + 6) * 13 + (xs[:, None] - xs[None] + 6)
    ref = np.zeros(49)
    for h in range(8):
        qh, kh = q[:, 32 * h: 32 * h + 32], k[:, 32 * h: 32 * h + 32]
        logits = (qh @ kh.T) / np.sqrt(32) + table[torch.from_numpy(idx), h]
        ref += torch.softmax(logits, -1).mean(0).numpy() / 8
    return ref


class TopHalf(nn.Module):
    """Logits from the top half of the image only, through a smooth non-linearity (float64)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 4, 3, padding=1).double()
        self.head = nn.Linear(4, 3).double()

    def forward(self, x):
        h = torch.tanh(self.conv(x[:, :, : x.shape[2] // 2]))
        return self.head(h.mean((2, 3)))


def test_gradient_map_zero_where_input_cannot_matter_and_matches_finite_differences():
    model = TopHalf()
    x = torch.randn(1, 3, 16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    x[0, :, 4, 4] = 0.0
    maps, target = gradient_map(model, x, method="gradient")
    assert maps.shape == (1, 16, 16) and int(target[0]) == int(model(x).argmax())
    assert torch.all(maps[0, 8:] == 0) and torch.all(maps[0, :8] > 0)
    eps, t = 1e-6, int(target[0])
    with torch.no_grad():
        for r, col in [(1, 2), (7, 15), (3, 9), (0, 0)]:  # central differences per colour channel, float64
            fd = [(model(_bump(x, ch, r, col, eps))[0, t] - model(_bump(x, ch, r, col, -eps))[0, t]) / (2 * eps)
                  for ch in range(3)]
            assert float(maps[0, r, col]) == pytest.approx(max(abs(float(g)) for g in fd), rel=1e-5)
    ixg, _ = gradient_map(model, x, method="input_x_gradient")
    assert float(ixg[0, 4, 4]) == 0.0 and torch.all(ixg[0, 8:] == 0)
    other, tgt = gradient_map(model, x, target=[(t + 1) % 3])
    assert int(tgt[0]) == (t + 1) % 3 and not torch.allclose(other, maps)


def _bump(x, c, r, col, eps):
    y = x.clone()
    y[0, c, r, col] += eps
    return y


def test_gradcam_on_mpa_fer(tmp_path):
    pytest.importorskip("open_clip")
    import ferkit
    from ferkit.clip import build_clip

    clip = tmp_path / "tiny_clip.pt"
    torch.save(build_clip("tiny", seed=1).state_dict(), clip)
    model = ferkit.create_model("mpa_fer_vit_b16", clip_arch="tiny", clip_weights=clip).eval()
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    cam, target = gradient_map(model, x, method="gradcam")
    assert cam.shape == (2, 7, 7) and torch.all(cam >= 0) and torch.isfinite(cam).all()
    with torch.no_grad():
        assert torch.equal(target, model(x).argmax(1))
    grad, _ = gradient_map(model, x, method="gradient")
    assert grad.shape == (2, 224, 224) and float(grad.max()) > 0
    with pytest.raises(ValueError, match="CLIP vision transformer"):
        gradient_map(TopHalf(), x.double()[:, :, :16, :16], method="gradcam")


def test_explain_real_photo_overlay_only_inside_the_face(make_rec, photos, tmp_path):
    box = (180, 60, 270, 180)
    rec = make_rec(StubDetector(box), name="stub", poster=True)
    exp = explain(rec, photos["astronaut"], out_dir=tmp_path)
    assert exp.method == "attention" and len(exp.faces) == 1
    fe = exp.faces[0]
    assert fe.raw.shape == (7, 7) and fe.heat.shape == (224, 224) and fe.target is None
    assert fe.heat.min() == 0.0 and fe.heat.max() == pytest.approx(1.0)
    photo = np.asarray(Image.open(photos["astronaut"]))
    changed = np.any(exp.overlay != photo, axis=-1)
    side = 120 * 1.2  # square crop around the box with a 10 % margin on every side
    cx, cy = 225, 120
    ys, xs = np.nonzero(changed)
    assert xs.min() >= cx - side / 2 - 2 and xs.max() <= cx + side / 2 + 2
    assert ys.min() >= cy - side / 2 - 2 and ys.max() <= cy + side / 2 + 2
    assert changed[100, 225]
    assert (tmp_path / "astronaut_explain.png").is_file() and (tmp_path / "astronaut_face0.png").is_file()
    assert fe.panel().shape == (224, 672, 3)


def test_overlay_helpers():
    c = colorize(np.array([[0.0, 0.5, 1.0]]))
    assert tuple(c[0, 0]) == (0, 0, 128) and tuple(c[0, 2]) == (128, 0, 0)
    heat = np.zeros((4, 4))
    heat[1, 2] = 1.0
    # crop pixel (u, v) -> image pixel (2u + 10, 2v + 20)
    pasted, cover = paste(heat, np.array([[2.0, 0, 10], [0, 2.0, 20]]), (40, 40))
    assert cover[20:28, 10:18].min() > 0.99 and cover[:19].max() == 0 and cover[:, :9].max() == 0
    y, x = np.unravel_index(np.argmax(pasted), pasted.shape)
    assert 22 <= y <= 24 and 14 <= x <= 16
