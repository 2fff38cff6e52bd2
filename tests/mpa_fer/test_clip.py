"""ferkit.clip: tokenizer from the open_clip wheel, loading OpenAI / open_clip files strictly, identities."""

from __future__ import annotations

import logging

import pytest
import torch

from ferkit.checkpoint import sha256_file
from ferkit.clip import EOT_ID, SOT_ID, arch_from_state_dict, build_clip, count_tokens, get_arch, load_clip, tokenize
from ferkit.errors import WeightsError


def test_tokenizer_matches_open_clip_and_marks_truncation(caplog):
    import open_clip

    texts = ["a photo of a person making a facial expression of disgust.", "X X X X X X X X X X happiness."]
    assert torch.equal(tokenize(texts), open_clip.tokenize(texts))
    t = tokenize(texts)
    assert (t[:, 0] == SOT_ID).all() and (t.argmax(-1) == torch.tensor([14, 13])).all()  # SOT, 10, "disgust" = 2, "."
    assert count_tokens("a photo of a person making a facial expression of") == 12  # 10 BPE tokens + SOT/EOT
    long = "happy " * 100
    with caplog.at_level(logging.WARNING):
        ids = tokenize(long)
    assert ids[0, -1] == EOT_ID and "truncated" in caplog.text


def test_state_dict_file_loads_strictly_and_identically(tiny_clip_file):
    ref = build_clip("tiny", seed=1)
    clip, ident = load_clip("tiny", tiny_clip_file)
    assert ident == {"arch": "tiny", "sha256": sha256_file(tiny_clip_file), "source": "file",
                     "file": tiny_clip_file.name}
    assert not any(p.requires_grad for p in clip.parameters()) and not clip.training
    x, text = torch.randn(2, 3, 224, 224), tokenize(["a photo of fear.", "a photo of anger."])
    assert torch.equal(clip.encode_image(x), ref.encode_image(x))
    assert torch.equal(clip.encode_text(text), ref.encode_text(text))


def _openai_jit_archive(clip, path):
    """A TorchScript archive shaped like OpenAI's release: traced model, fp16 weights, JIT extras."""
    from open_clip import convert_weights_to_fp16

    convert_weights_to_fp16(clip)
    del clip.context_length, clip.vocab_size  # plain ints in open_clip; tensors in OpenAI's archives
    clip.register_buffer("input_resolution", torch.tensor(224))
    clip.register_buffer("context_length", torch.tensor(77))
    clip.register_buffer("vocab_size", torch.tensor(49408))
    traced = torch.jit.trace_module(clip,
                                    {"encode_text": (torch.zeros(1, 77, dtype=torch.long),)}, check_trace=False)
    traced.save(str(path))


def test_openai_torchscript_archive_loads_strictly(tmp_path):
    src = build_clip("tiny", seed=3)
    _openai_jit_archive(src, tmp_path / "ViT-tiny.pt")  # src is now partly fp16, as OpenAI's weights are
    jit = torch.jit.load(str(tmp_path / "ViT-tiny.pt")).state_dict()
    assert {"input_resolution", "context_length", "vocab_size"} <= set(jit)
    assert jit["visual.conv1.weight"].dtype == torch.float16
    extras = ("input_resolution", "context_length", "vocab_size", "attn_mask")
    half = {k: v.float() for k, v in src.state_dict().items() if k not in extras}
    clip, ident = load_clip("tiny", tmp_path / "ViT-tiny.pt")
    assert ident["sha256"] == sha256_file(tmp_path / "ViT-tiny.pt")
    got = clip.state_dict()
    assert set(got) == set(half)
    assert all(torch.equal(got[k], half[k]) and got[k].dtype == torch.float32 for k in half)


def test_open_clip_custom_text_and_safetensors_layouts(tmp_path):
    from safetensors.torch import save_file

    src = build_clip("tiny", seed=4)
    sd = src.state_dict()
    text_keys = ("text_projection", "positional_embedding", "token_embedding", "transformer", "ln_final")
    custom = {("text." + k if k.startswith(text_keys) else k): v for k, v in sd.items()}
    torch.save({"state_dict": {"module." + k: v for k, v in custom.items()}}, tmp_path / "custom.pt")
    save_file({k: v.contiguous() for k, v in sd.items()}, str(tmp_path / "clip.safetensors"))
    x = torch.randn(1, 3, 224, 224)
    for name in ("custom.pt", "clip.safetensors"):
        clip, _ = load_clip("tiny", tmp_path / name)
        assert torch.equal(clip.encode_image(x), src.encode_image(x))


def test_wrong_shape_missing_file_and_not_clip_raise(tmp_path, tiny_clip_file):
    with pytest.raises(WeightsError, match="clip_arch='ViT-B-16'"):
        load_clip("ViT-B-16", tiny_clip_file)
    with pytest.raises(WeightsError, match="not found"):
        load_clip("tiny", tmp_path / "nope.pt")
    torch.save({"fc.weight": torch.zeros(2, 2)}, tmp_path / "other.pt")
    with pytest.raises(WeightsError, match="not a CLIP ViT"):
        load_clip("tiny", tmp_path / "other.pt")
    sd = torch.load(tiny_clip_file, weights_only=True)
    sd.pop("visual.ln_post.bias")
    torch.save(sd, tmp_path / "broken.pt")
    with pytest.raises(WeightsError, match="missing"):
        load_clip("tiny", tmp_path / "broken.pt")


def test_arch_inference_names_openai_shapes():
    for name in ("ViT-B-16", "ViT-L-14"):
        meta = build_clip(name, device="meta")
        assert arch_from_state_dict(meta.state_dict()) == get_arch(name)
    assert get_arch("ViT-B/16").name == "ViT-B-16"


def test_random_weights_are_seeded_and_identified():
    a, ida = load_clip("tiny", "random", seed=5)
    b, _ = load_clip("tiny", "random", seed=5)
    assert ida["sha256"] == "random:5"
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
