"""MPA-FER model: equivalence with open_clip, prompt mechanics, frozen backbone, exact trainable sets and counts."""

from __future__ import annotations

import pytest
import torch

import ferkit
from ferkit.clip import build_clip, tokenize
from ferkit.models.mpa_fer import MPAFER, MPAFERConfig, encoders


@pytest.mark.parametrize("first", ["after_ln_pre", "before_ln_pre"])
def test_unprompted_image_encoder_equals_open_clip(make_model, first):
    """Without prompts the placement option must not matter (with prompts: ``test_mpa_oracles``)."""
    model = make_model(vp_first=first)
    x = torch.randn(3, 3, 224, 224)
    with torch.no_grad():
        z_g, _ = model.encode_image(x, use_prompts=False)
        assert (z_g - model.clip.encode_image(x)).abs().max() <= 1e-5
        assert (model.encode_image(x)[0] - z_g).abs().max() > 1e-4  # prompts on: they change the features


def test_text_encoder_on_hard_prompts_equals_open_clip(make_model):
    model = make_model()
    tokens = tokenize(model.hard_texts())
    with torch.no_grad():
        ours = model.encode_text_embeddings(model.clip.token_embedding(tokens), tokens)
        ref = model.clip.encode_text(tokens)
        _, t_hard = model.hard_features()
    assert (ours - ref).abs().max() <= 1e-5
    assert (t_hard - ref).abs().max() <= 1e-5


def _reference_prompted(visual, x, prompts):
    """Deep VPT the other way round: prompts inserted right after the class token, outputs dropped there."""
    t = visual.ln_pre(encoders.patch_tokens(visual, x))
    for layer, block in enumerate(visual.transformer.resblocks):
        p = prompts[layer].expand(x.shape[0], -1, -1)
        t = block(torch.cat([t[:, :1], p, t[:, 1:]], dim=1))
        t = torch.cat([t[:, :1], t[:, 1 + p.shape[1]:]], dim=1)
    t = visual.ln_post(t) @ visual.proj
    return t[:, 0], t[:, 1:]


def test_deep_visual_prompts_match_insertion_after_cls(make_model):
    model = make_model()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        model.vprompt.normal_(std=1.0)
        z_g, z_l = model.encode_image(x)
        ref_g, ref_l = _reference_prompted(model.clip.visual, x, model.vprompt)
        plain, _ = model.encode_image(x, use_prompts=False)
    assert torch.allclose(z_g, ref_g, atol=1e-5) and torch.allclose(z_l, ref_l, atol=1e-5)
    assert not torch.allclose(z_g, plain, atol=1e-3)  # prompts do change the features
    assert z_l.shape == (2, 49, 32)


def test_value_path_is_the_block_with_self_only_attention():
    clip = build_clip("tiny", seed=2)
    block = clip.visual.transformer.resblocks[-1]
    x = torch.randn(2, 10, 64)
    self_only = torch.full((10, 10), float("-inf")).fill_diagonal_(0.0)
    with torch.no_grad():
        assert torch.allclose(encoders.value_path(block, x), block(x, attn_mask=self_only), atol=1e-5)


def test_gradients_reach_only_the_prompts(make_model):
    model = make_model()
    model.set_prototypes(torch.nn.functional.normalize(torch.randn(7, 32), dim=-1))
    loss, logits, parts = model.training_loss(torch.randn(4, 3, 224, 224), torch.tensor([0, 3, 5, 6]))
    loss.backward()
    assert set(parts) == {"ce", "ta", "pa", "v"} and all(torch.isfinite(torch.tensor(v)) for v in parts.values())
    assert logits.shape == (4, 7)
    assert model.ctx.grad.abs().sum() > 0 and model.vprompt.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.clip.parameters())
    assert {n for n, p in model.named_parameters() if p.requires_grad} == {"ctx", "vprompt"}
    assert model.trainable_parameters() == [model.ctx, model.vprompt]


def test_frozen_clip_bit_identical_after_an_optimizer_step(make_model):
    model = make_model()
    model.set_prototypes(torch.nn.functional.normalize(torch.randn(7, 32), dim=-1))
    before = {k: v.clone() for k, v in model.clip.state_dict().items()}
    ctx0 = model.ctx.detach().clone()
    opt = torch.optim.SGD(model.trainable_parameters(), lr=0.032, momentum=0.9, weight_decay=5e-4)
    model.train()
    for _ in range(2):
        opt.zero_grad()
        model.training_loss(torch.randn(2, 3, 224, 224), torch.tensor([1, 2]))[0].backward()
        opt.step()
    after = model.clip.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not torch.equal(ctx0, model.ctx) and not model.clip.training


@pytest.mark.parametrize("arch, total", [("ViT-B-16", 78_848), ("ViT-L-14", 204_288)])
def test_trainable_count_at_paper_shapes(arch, total):
    clip = build_clip(arch, device="meta")  # real shapes, no memory
    model = MPAFER(MPAFERConfig(clip_arch=arch, hard_prompt="h2"), clip, label_names="rafdb")
    counts = {n: p.numel() for n, p in model.named_parameters() if p.requires_grad}
    width, layers, d_t = (768, 12, 512) if arch == "ViT-B-16" else (1024, 24, 768)
    assert counts == {"ctx": 10 * d_t, "vprompt": layers * 8 * width}
    assert sum(counts.values()) == total
    csc = MPAFER(MPAFERConfig(clip_arch=arch, hard_prompt="h2", csc=True), clip, label_names="rafdb")
    # docs/mpa_fer.md#d10-options-and-defaults, #14: 35,840 (B/16) / 53,760 (L/14)
    assert csc.ctx.numel() == 7 * 10 * d_t


def test_h2_prompts_align_with_soft_prompts_and_h3_fits(make_model):
    for labels in ("rafdb", "affectnet8"):
        h2 = make_model(hard_prompt="h2", label_names=labels)
        assert torch.equal(h2.hard_tokens.argmax(-1), h2.soft_tokens.argmax(-1))  # EOT at the same position
        h3 = make_model(label_names=labels)
        assert (h3.hard_tokens.argmax(-1) < 76).all()  # no truncation: EOT before the last slot
        assert all(t.startswith("a photo of a person making a facial expression of ") for t in h3.hard_texts())


def test_text_feature_cache_follows_ctx_and_train_mode(make_model):
    model = make_model().eval()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        first = model.text_features()
        assert model.text_features() is first  # cached at inference
        out1 = model(x)
        model.ctx.add_(torch.randn_like(model.ctx))  # an optimiser step changes ctx in place
        second = model.text_features()
        assert second is not first and not torch.allclose(second, first)
        assert not torch.allclose(model(x), out1)
    model.train()
    assert model._text_cache is None and not model.clip.training
    fresh = model.text_features()  # with grad: not cached
    assert fresh.requires_grad


def test_every_registered_variant_runs_forward_and_backward(make_model):
    full = {"ce", "ta", "pa", "v"}
    expected = {"mpa_fer_vit_b16": full, "mpa_fer_vit_l14": full, "mpa_fer_vit_b16_coop": {"ce"},
                "mpa_fer_vit_b16_coop_vp": {"ce"}, "mpa_fer_vit_b16_coop_vp_proto": {"ce", "v"},
                "mpa_fer_vit_b16_coop_vp_proto_spa": full}
    assert set(ferkit.list_models("mpa_fer*")) == set(expected)
    x, y = torch.randn(2, 3, 224, 224), torch.tensor([0, 1])
    for name, terms in expected.items():
        model = make_model(name)
        model.set_prototypes(torch.nn.functional.normalize(torch.randn(7, 32), dim=-1))
        loss, logits, parts = model.training_loss(x, y)
        loss.backward()
        assert set(parts) == terms and logits.shape == (2, 7), name
        assert all(p.grad is not None for p in model.trainable_parameters()), name
        assert (model.vprompt is None) == (name == "mpa_fer_vit_b16_coop")


def test_coop_logits_are_scaled_global_cosine(make_model):
    model = make_model("mpa_fer_vit_b16_coop").eval()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        img = torch.nn.functional.normalize(model.clip.encode_image(x), dim=-1)
        txt = torch.nn.functional.normalize(model.text_features(), dim=-1)
        ref = model.clip.logit_scale.exp() * img @ txt.t()
        assert torch.allclose(model(x), ref, atol=1e-5)


def test_forward_features_and_data_config(make_model):
    model = make_model()
    assert model.data_config == {"input_size": 224, "mean": (0.48145466, 0.4578275, 0.40821073),
                                 "std": (0.26862954, 0.26130258, 0.27577711), "interpolation": "bicubic",
                                 "family": "mpa_fer"}
    with torch.no_grad():
        assert model.forward_features(torch.randn(2, 3, 224, 224)).shape == (2, 32)


def test_training_without_prototypes_explains_itself(make_model):
    with pytest.raises(RuntimeError, match="prepare_training"):
        make_model().training_loss(torch.randn(1, 3, 224, 224), torch.tensor([0]))


def test_model_info_counts_prompts_and_per_image_cost(make_model, capsys):
    import json

    from torch.utils.flop_counter import FlopCounterMode

    from ferkit.cli.main import main
    from ferkit.models.info import model_info

    model = make_model()
    info = model_info(model)
    assert info["params_trainable"] == 10 * 64 + 2 * 8 * 64
    assert info["params_total"] == sum(p.numel() for p in model.clip.parameters()) + info["params_trainable"]
    x = torch.randn(1, 3, 224, 224)
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as img:
            model.encode_image(x)
        model._text_cache = None
        with torch.no_grad(), FlopCounterMode(display=False) as txt:
            model.text_features()
    finally:
        torch.backends.mha.set_fastpath_enabled(True)
    extra = info["macs"] - img.get_total_flops() // 2  # only the similarity products remain
    assert 0 <= extra < txt.get_total_flops() // 2 // 10
    assert main(["info", "mpa_fer_vit_b16", "--set", "clip_arch=tiny", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["params_trainable"] == 1664


@pytest.mark.parametrize("overrides", [
    {"ta_pool": "position"}, {"align_dir": "symmetric"}, {"pa_loss": "l1"}, {"logit_scale": 1.0},
    {"local_feat": "value"}, {"local_sim": "dot"}, {"v_loss": "l1", "v_reduction": "sum"}, {"csc": True},
    {"vp_first": "before_ln_pre"}, {"class_words": "adjective"}, {"hard_prompt": "h1"}, {"topk": 4},
    {"soft_suffix": "hard", "text_align": False, "hard_prompt": "h2"},
])
def test_design_alternatives_train(make_model, overrides):
    model = make_model(**overrides)
    model.set_prototypes(torch.nn.functional.normalize(torch.randn(7, 32), dim=-1))
    loss, logits, _ = model.training_loss(torch.randn(2, 3, 224, 224), torch.tensor([4, 6]))
    loss.backward()
    assert torch.isfinite(loss) and all(p.grad.abs().sum() > 0 for p in model.trainable_parameters())
    if "soft_suffix" in overrides:
        assert model.soft_texts()[0] == "X " * 10 + "a photo of a person making a facial expression of surprise."
    if overrides.get("csc"):
        assert model.ctx.shape == (7, 10, 64)


def test_bad_options_name_the_key(make_model):
    from ferkit.errors import ConfigError

    with pytest.raises(ConfigError, match="n_proto"):
        make_model(n_proto="most")
    with pytest.raises(ConfigError, match="logit_scale"):
        make_model(logit_scale="big")
    with pytest.raises(ConfigError, match="clip_arch"):
        make_model(clip_arch="ViT-H-14")
