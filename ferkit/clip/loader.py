"""Build a frozen open_clip ``CLIP`` from a local weights file, or randomly for tests and timing.

Accepted files (format detected from the content, not the name):

* OpenAI TorchScript archives (``ViT-B-16.pt``, ``ViT-L-14.pt``, fp16 weights) — their ``state_dict()`` is used,
  the JIT extras ``input_resolution`` / ``context_length`` / ``vocab_size`` and a stored ``attn_mask`` are dropped;
* OpenAI / open_clip state dicts (``torch.save`` files, read with ``weights_only=True``; optional ``state_dict`` /
  ``module.`` wrapping) and safetensors copies; open_clip ``CustomTextCLIP`` layouts (``text.*``) are converted.

Weights load strictly into a QuickGELU model (OpenAI CLIP was trained with QuickGELU; open_clip 3.3 would otherwise
build ``nn.GELU`` and only warn) and are converted to float32. The identity of the weights is their architecture and
the SHA-256 of the file; MPA-FER checkpoints record it and refuse a different CLIP.
"""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ferkit.checkpoint import load_state_dict_strict, read_checkpoint, sha256_file, unwrap_state_dict
from ferkit.clip.archs import OPENAI_SHA256, ClipArch, arch_from_state_dict, describe, get_arch
from ferkit.clip.tokenizer import require_open_clip
from ferkit.errors import CheckpointError, WeightsError

log = logging.getLogger(__name__)

JIT_EXTRAS = ("input_resolution", "context_length", "vocab_size")
DERIVED = ("attn_mask",)  # causal text mask: rebuilt, not loaded (TorchScript archives store it as a buffer)
RANDOM = "random"


def build_clip(arch: ClipArch | str, *, seed: int | None = 0, device: str | torch.device | None = None) -> nn.Module:
    """A randomly initialised open_clip ``CLIP`` of shape ``arch`` (QuickGELU when the arch says so), frozen, eval.

    Args:
        arch: architecture or its name. seed: seeds the initialisation (None = global RNG).
        device: e.g. ``"meta"`` to get shapes without memory (parameter counting).
    """
    arch = get_arch(arch) if isinstance(arch, str) else arch
    require_open_clip()
    from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

    vision = CLIPVisionCfg(layers=arch.vision_layers, width=arch.vision_width, head_width=arch.head_width,
                           patch_size=arch.patch_size, image_size=arch.image_size)
    text = CLIPTextCfg(context_length=arch.context_length, vocab_size=arch.vocab_size, width=arch.text_width,
                       heads=arch.text_heads, layers=arch.text_layers)
    with torch.random.fork_rng(devices=[]), torch.device(device or "cpu"):
        if seed is not None:
            torch.manual_seed(seed)
        model = CLIP(arch.embed_dim, vision_cfg=vision, text_cfg=text, quick_gelu=arch.quick_gelu)
    return model.requires_grad_(False).eval()


def read_clip_state_dict(path: str | os.PathLike, *, trust: bool = False) -> dict[str, torch.Tensor]:
    """Read a CLIP weights file into an OpenAI-layout float32 state dict (see the module docstring for formats)."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"CLIP weights file not found: {path}")
    sd = unwrap_state_dict(read_checkpoint(path, trust=trust))
    sd = {k: v for k, v in sd.items() if k not in JIT_EXTRAS}
    if "text.text_projection" in sd or "text.token_embedding.weight" in sd:  # open_clip CustomTextCLIP layout
        sd = {k[len("text."):] if k.startswith("text.") else k: v for k, v in sd.items()}
    sd = {k: v for k, v in sd.items() if k not in DERIVED}
    if "visual.proj" not in sd or "token_embedding.weight" not in sd:
        sample = ", ".join(list(sd)[:6])
        raise WeightsError(f"{path} is not a CLIP ViT checkpoint in OpenAI or open_clip layout (expected keys such as "
                           f"visual.proj, token_embedding.weight, transformer.resblocks.*); found {len(sd)} tensors "
                           f"such as {sample}")
    return {k: v.float() if v.is_floating_point() else v for k, v in sd.items()}


def load_clip(arch: ClipArch | str | None, weights: str | os.PathLike, *, trust: bool = False,
              seed: int = 0) -> tuple[nn.Module, dict[str, Any]]:
    """Frozen CLIP and its identity ``{"arch", "sha256", "source", "file"}``.

    Args:
        arch: expected architecture (its name or a :class:`ClipArch`); None = infer from the weights.
        weights: path of a weights file, or ``"random"`` for a seeded random initialisation (tests, timing, info).
        trust: allow full unpickling of legacy pickled files (unsafe for untrusted files).
        seed: seed of the random initialisation.

    Raises:
        WeightsError: missing/unreadable file, not a CLIP, or a shape that differs from ``arch``.
    """
    if str(weights) == RANDOM:
        if arch is None:
            raise ValueError("clip_weights='random' needs an architecture (clip_arch)")
        arch = get_arch(arch) if isinstance(arch, str) else arch
        identity = {"arch": arch.name, "sha256": f"{RANDOM}:{seed}", "source": RANDOM, "file": None}
        log.warning("using a RANDOMLY initialised CLIP %s: fine for tests, timing and parameter counts, "
                    "meaningless for predictions", arch.name)
        return build_clip(arch, seed=seed), identity
    sd = read_clip_state_dict(weights, trust=trust)
    found = arch_from_state_dict(sd)
    arch = _check_arch(arch, found, weights)
    model = build_clip(arch, seed=None, device="meta")
    model = model.to_empty(device="cpu")
    _load_weights(model, sd, weights)
    sha = sha256_file(weights)
    source = "openai" if OPENAI_SHA256.get(arch.name) == sha else "file"
    log.info("loaded CLIP %s from %s (sha256 %s%s)", describe(arch), weights, sha[:12],
             ", OpenAI release" if source == "openai" else "")
    identity = {"arch": arch.name, "sha256": sha, "source": source, "file": str(Path(weights).name)}
    return model.requires_grad_(False).eval(), identity


def _check_arch(arch: ClipArch | str | None, found: ClipArch, path) -> ClipArch:
    if arch is None:
        return found
    want = get_arch(arch) if isinstance(arch, str) else arch
    if want.shape_key() != found.shape_key():
        raise WeightsError(f"{path} holds a CLIP of shape {describe(replace(found, name='?'))}, but clip_arch="
                           f"{want.name!r} expects {describe(want)}")
    return want


def _load_weights(model: nn.Module, sd: dict[str, torch.Tensor], path) -> None:
    """Strict load (:func:`ferkit.checkpoint.load_state_dict_strict`), raised as ``WeightsError`` like the other
    problems of a CLIP weights file."""
    own = model.state_dict()
    if "logit_scale" in sd and "logit_scale" in own and sd["logit_scale"].shape != own["logit_scale"].shape:
        sd["logit_scale"] = sd["logit_scale"].reshape(own["logit_scale"].shape)
    try:
        load_state_dict_strict(model, sd, what=f"CLIP weights {path}")
    except CheckpointError as e:
        raise WeightsError(str(e)) from None
    # non-persistent buffers (the causal text mask) are not in the file: rebuild them on the real device
    model.attn_mask = _causal_mask(model.context_length)


def _causal_mask(n: int) -> torch.Tensor:
    """Additive causal mask (n, n): -inf above the diagonal, as CLIP's text transformer uses."""
    return torch.full((n, n), float("-inf")).triu_(1)
