"""MPA-FER (multimodal prompt alignment on a frozen CLIP) and its registered variants."""

from __future__ import annotations

import importlib.util
import os
from dataclasses import replace
from typing import Any

from ferkit.clip.archs import ClipArch, get_arch
from ferkit.clip.loader import load_clip
from ferkit.config import apply_overrides
from ferkit.errors import FerkitError, WeightsError
from ferkit.models._registry import register_family, register_model
from ferkit.models.mpa_fer.adapter import MPAFERAdapter
from ferkit.models.mpa_fer.config import MPAFERConfig
from ferkit.models.mpa_fer.model import MPAFER
from ferkit.models.mpa_fer.prompts import load_descriptions
from ferkit.models.mpa_fer.transforms import transform_defaults

__all__ = ["MPAFER", "MPAFERConfig", "MPAFERAdapter", "build_mpa_fer", "resolve_clip_weights"]


def _weights_hint(arch: ClipArch) -> str:
    if arch.weights_name is None:
        return (f"CLIP architecture {arch.name!r} has no released weights: pass clip_weights='random' (tests) or "
                "clip_weights=PATH")
    return (f"MPA-FER runs on frozen CLIP {arch.name} weights, which ferkit does not bundle: run "
            f"`ferkit weights download {arch.weights_name}`, or pass clip_weights=PATH (OpenAI's {arch.name}.pt or an "
            f"open_clip {arch.name} file; CLI: --set clip_weights=PATH, ferkit train: --set "
            "model.options.clip_weights=PATH). clip_weights='random' builds a randomly "
            "initialised CLIP for tests, timing and `ferkit info` only")


def resolve_clip_weights(arch: ClipArch, clip_weights: str | os.PathLike | None) -> str | os.PathLike:
    """``clip_weights`` itself, else the ``ferkit.hub`` cache entry of the architecture, else a clear error."""
    if clip_weights is not None:
        return clip_weights
    if arch.weights_name and importlib.util.find_spec("ferkit.hub") is not None:
        from ferkit.hub import get_weights

        try:
            return get_weights(arch.weights_name)
        except (FerkitError, OSError) as e:
            raise WeightsError(f"{e}\n{_weights_hint(arch)}") from e
    raise WeightsError(_weights_hint(arch))


def build_mpa_fer(*, label_names=None, num_classes: int | None = None, clip_weights: str | os.PathLike | None = None,
                  allow_clip_mismatch: bool = False, clip_seed: int = 0, trust_checkpoint: bool = False,
                  **overrides: Any) -> MPAFER:
    """Build MPA-FER on a frozen CLIP; ``overrides`` are :class:`MPAFERConfig` fields.

    Args:
        clip_weights: CLIP weights file (OpenAI TorchScript / state dict, open_clip, safetensors); None = the
            ``ferkit weights`` cache; ``"random"`` = seeded random CLIP (tests, benchmarks, ``ferkit info``).
        allow_clip_mismatch: load a checkpoint trained on another CLIP anyway (deliberate experiments only).
        clip_seed: seed of the random CLIP. trust_checkpoint: allow unpickling a legacy pickled CLIP file.
    """
    cfg = apply_overrides(MPAFERConfig(), overrides)
    arch = replace(get_arch(cfg.clip_arch), quick_gelu=cfg.clip_quick_gelu)
    weights = resolve_clip_weights(arch, clip_weights)
    clip, identity = load_clip(arch, weights, trust=trust_checkpoint, seed=clip_seed)
    needs_desc = cfg.hard_prompt == "h3" and (cfg.text_align or cfg.soft_suffix == "hard")
    descriptions, dsha = load_descriptions(cfg.descriptions) if needs_desc else ({}, None)
    model = MPAFER(cfg, clip, label_names, num_classes, descriptions, identity, dsha)
    model.allow_clip_mismatch = allow_clip_mismatch
    return model


_ADAPTER = MPAFERAdapter()
register_family("mpa_fer", transform_defaults=transform_defaults,
                # parameter counts and MACs do not depend on CLIP's values: a random CLIP of the right shape will do
                info_overrides={"clip_weights": "random", "allow_clip_mismatch": True},
                description="MPA-FER: multimodal prompt alignment on a frozen CLIP")
_TABLE1 = {"local_align": False, "text_align": False, "proto_align": False}
_VARIANTS = {
    "mpa_fer_vit_b16": ({"clip_arch": "ViT-B-16"}, "MPA-FER on frozen CLIP ViT-B/16 (paper's main model)"),
    "mpa_fer_vit_l14": ({"clip_arch": "ViT-L-14"}, "MPA-FER on frozen CLIP ViT-L/14 (paper Table 4)"),
    "mpa_fer_vit_b16_coop": ({**_TABLE1, "n_vprompt": 0}, "Table 1 row 1: CoOp baseline (text context only)"),
    "mpa_fer_vit_b16_coop_vp": (dict(_TABLE1), "Table 1 row 2: + visual prompts"),
    "mpa_fer_vit_b16_coop_vp_proto": ({"local_align": False, "text_align": False},
                                      "Table 1 row 3: + prototype-guided visual alignment"),
    "mpa_fer_vit_b16_coop_vp_proto_spa": ({"local_align": False},
                                          "Table 1 row 4: + soft-hard prompt alignment (row 5 = mpa_fer_vit_b16)"),
}
for _name, (_defaults, _desc) in _VARIANTS.items():
    register_model(_name, family="mpa_fer", builder=build_mpa_fer, adapter=_ADAPTER, description=_desc, **_defaults)


