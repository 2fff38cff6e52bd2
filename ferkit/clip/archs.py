"""CLIP architectures as data: the two OpenAI ViTs MPA-FER uses and a tiny one for tests.

Shapes follow OpenAI's released checkpoints (docs/mpa_fer.md#d1-clip-backbones-and-weights). ``tiny`` keeps the
real context length and vocabulary (so the real BPE tokenizer works) but is small enough for a forward + backward
in milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

#: SHA-256 of OpenAI's released TorchScript archives (embedded in their download URLs).
OPENAI_SHA256 = {
    "ViT-B-16": "5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f",
    "ViT-L-14": "b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836",
}


@dataclass(frozen=True)
class ClipArch:
    """Shape of a CLIP ViT. Attention heads are ``width // head_width`` (64 for OpenAI models)."""

    name: str
    embed_dim: int
    image_size: int
    patch_size: int
    vision_width: int
    vision_layers: int
    text_width: int
    text_layers: int
    head_width: int = 64
    context_length: int = 77
    vocab_size: int = 49408
    quick_gelu: bool = True
    weights_name: str | None = None  # name in ``ferkit weights`` (None: no released weights)

    @property
    def grid(self) -> int:
        return self.image_size // self.patch_size

    @property
    def text_heads(self) -> int:
        return self.text_width // self.head_width

    def shape_key(self) -> tuple:
        """Everything a state dict reveals about the shape (not the head count)."""
        return (self.embed_dim, self.image_size, self.patch_size, self.vision_width, self.vision_layers,
                self.text_width, self.text_layers, self.context_length, self.vocab_size)


ARCHS: dict[str, ClipArch] = {
    "ViT-B-16": ClipArch("ViT-B-16", 512, 224, 16, 768, 12, 512, 12, weights_name="clip_vit_b16"),
    "ViT-L-14": ClipArch("ViT-L-14", 768, 224, 14, 1024, 24, 768, 12, weights_name="clip_vit_l14"),
    "tiny": ClipArch("tiny", 32, 224, 32, 64, 2, 64, 2, head_width=32),
}


def get_arch(name: str) -> ClipArch:
    """Look up an architecture by name (``"ViT-B-16"``, ``"ViT-L-14"``, ``"tiny"``; ``/`` and case are tolerated)."""
    key = {k.lower(): k for k in ARCHS}.get(name.replace("/", "-").lower())
    if key is None:
        raise ValueError(f"unknown CLIP architecture {name!r}; known: {', '.join(ARCHS)}")
    return ARCHS[key]


def arch_from_state_dict(sd: dict[str, torch.Tensor]) -> ClipArch:
    """Infer the shape of a CLIP ViT from OpenAI-layout keys, as OpenAI's ``build_model`` does.

    The result is named after a known architecture of the same shape, else ``"custom"`` (heads = width // 64).
    """
    try:
        conv = sd["visual.conv1.weight"]
        vision_layers = sum(1 for k in sd if k.startswith("visual.") and k.endswith(".attn.in_proj_weight"))
        grid = round((sd["visual.positional_embedding"].shape[0] - 1) ** 0.5)
        text_layers = len({k.split(".")[2] for k in sd if k.startswith("transformer.resblocks.")})
        found = ClipArch("custom", embed_dim=sd["text_projection"].shape[1], image_size=conv.shape[-1] * grid,
                         patch_size=conv.shape[-1], vision_width=conv.shape[0], vision_layers=vision_layers,
                         text_width=sd["ln_final.weight"].shape[0], text_layers=text_layers,
                         context_length=sd["positional_embedding"].shape[0],
                         vocab_size=sd["token_embedding.weight"].shape[0])
    except KeyError as e:
        raise ValueError(f"not a CLIP ViT state dict: key {e.args[0]!r} is missing") from e
    for arch in ARCHS.values():
        if arch.shape_key() == found.shape_key() and arch.name != "tiny":
            return arch
    return found


def describe(arch: ClipArch) -> str:
    return (f"{arch.name} (vision {arch.vision_layers}x{arch.vision_width}, patch {arch.patch_size}, "
            f"image {arch.image_size}; text {arch.text_layers}x{arch.text_width}; embed {arch.embed_dim})")
