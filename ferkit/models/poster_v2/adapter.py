"""Checkpoint adapter for POSTER++: official POSTER_V2 files, ferkit files, and the two backbone files.

Official key -> ferkit key is one-to-one (see ``OFFICIAL_RENAMES``); keys of the official model's dead modules
(``DEAD_PATTERNS``) are dropped, ``relative_position_index`` buffers are checked against the formula and dropped.
Everything else loads strictly: a missing or unexpected key or a shape mismatch raises and names the keys.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ferkit.checkpoint import FORMAT, load_state_dict_strict, read_checkpoint, unwrap_state_dict
from ferkit.errors import CheckpointError
from ferkit.models.poster_v2.fusion import relative_position_index

log = logging.getLogger(__name__)

# (regex on official key, replacement) applied in order; first match wins.
OFFICIAL_RENAMES: list[tuple[str, str]] = [
    (r"^face_landback\.", "landmark_net."),
    (r"^ir_back\.", "image_net."),
    (r"^last_face_conv\.", "landmark_proj."),
    (r"^conv([123])\.", lambda m: f"image_down.{int(m.group(1)) - 1}."),
    (r"^window([123])\.norm\.", lambda m: f"fusion.{int(m.group(1)) - 1}.norm."),
    (r"^attn([123])\.qkv\.", lambda m: f"fusion.{int(m.group(1)) - 1}.attn.kv."),
    (r"^attn([123])\.", lambda m: f"fusion.{int(m.group(1)) - 1}.attn."),
    (r"^ffn([123])\.norm\.", lambda m: f"fusion.{int(m.group(1)) - 1}.norm2."),
    (r"^ffn([123])\.", lambda m: f"fusion.{int(m.group(1)) - 1}."),
    (r"^embed_q\.", "tokenize.0."),
    (r"^embed_k\.", "tokenize.1."),
    (r"^embed_v\.proj\.", "tokenize.2.0."),
    (r"^VIT\.se_block\.", "se."),
    (r"^VIT\.head\.linear\.", "head."),
    (r"^VIT\.", "fuser."),
]

# Official modules that never influence the logits (docs/poster_v2.md#r3-dead-modules); their keys are accepted and
# ignored.
DEAD_PATTERNS = [
    r"^ir_back\.output_layer\.",
    r"^VIT\.(IRLinear1|IRLinear2|patch_embed|CON1|eca_block)\.",
    r"^VIT\.blocks\.\d+\.conv\.",
]

OPTIMIZER_ONLY_HINT = ("this file holds only optimizer state ('state' + 'param_groups'): the official POSTER_V2 "
                       "save_checkpoint writes the SAM optimizer, not the model, to *_model_best.pth. Use the "
                       "per-epoch checkpoint (a dict with 'state_dict') or a released checkpoint instead")


def _rename(key: str) -> str:
    for pattern, repl in OFFICIAL_RENAMES:
        new, n = re.subn(pattern, repl, key, count=1)
        if n:
            return new
    return key


def official_to_ferkit(sd: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Rename an official state dict (no ``module.``) to ferkit keys. Returns (state dict, dropped dead keys)."""
    out, dropped = {}, []
    for k, v in sd.items():
        if any(re.match(p, k) for p in DEAD_PATTERNS):
            dropped.append(k)
            continue
        m = re.match(r"^attn([123])\.relative_position_index$", k)
        if m:
            w = int(round(v.shape[0] ** 0.5))
            if not torch.equal(v.long(), relative_position_index(w)):
                raise CheckpointError(f"{k} differs from the Swin relative-position formula for a {w}x{w} window")
            continue
        out[_rename(k)] = v
    return out, dropped


# ferkit key -> official key: the inverse of OFFICIAL_RENAMES (one-to-one; tests/infer/test_bench.py round-trips it)
FERKIT_RENAMES: list[tuple[str, Any]] = [
    (r"^landmark_net\.", "face_landback."),
    (r"^image_net\.", "ir_back."),
    (r"^landmark_proj\.", "last_face_conv."),
    (r"^image_down\.([012])\.", lambda m: f"conv{int(m.group(1)) + 1}."),
    (r"^fusion\.([012])\.norm\.", lambda m: f"window{int(m.group(1)) + 1}.norm."),
    (r"^fusion\.([012])\.attn\.kv\.", lambda m: f"attn{int(m.group(1)) + 1}.qkv."),
    (r"^fusion\.([012])\.attn\.", lambda m: f"attn{int(m.group(1)) + 1}."),
    (r"^fusion\.([012])\.norm2\.", lambda m: f"ffn{int(m.group(1)) + 1}.norm."),
    (r"^fusion\.([012])\.", lambda m: f"ffn{int(m.group(1)) + 1}."),
    (r"^tokenize\.0\.", "embed_q."),
    (r"^tokenize\.1\.", "embed_k."),
    (r"^tokenize\.2\.0\.", "embed_v.proj."),
    (r"^se\.", "VIT.se_block."),
    (r"^head\.", "VIT.head.linear."),
    (r"^fuser\.", "VIT."),
]


def ferkit_to_official(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A ferkit ``poster_v2`` state dict (the official architecture) in the official key layout, e.g. to load ferkit's
    weights into the official code (``ferkit bench --official-src``).

    The ``relative_position_index`` buffers are rebuilt from the formula; the official dead modules (``DEAD_PATTERNS``)
    have no ferkit counterpart and are not produced: load the result over the official model's own state dict.

    Raises:
        CheckpointError: a key with no official counterpart (a ferkit-only option such as the open streams, a
            deeper ViT, vanilla attention, ...): only the official architecture can run in the official code.
    """
    out: dict[str, torch.Tensor] = {}
    unknown = []
    for k, v in sd.items():
        for pattern, repl in FERKIT_RENAMES:
            new, n = re.subn(pattern, repl, k, count=1)
            if n:
                out[new] = v
                break
        else:
            unknown.append(k)
    if unknown:
        raise CheckpointError(f"{len(unknown)} ferkit keys have no official POSTER_V2 counterpart (e.g. "
                              f"{', '.join(unknown[:3])}): only the official architecture maps to the official code")
    for s in (1, 2, 3):
        table = out.get(f"attn{s}.relative_position_bias_table")
        if table is not None:
            w = (int(round(table.shape[0] ** 0.5)) + 1) // 2
            out[f"attn{s}.relative_position_index"] = relative_position_index(w)
    return out


def _is_official(sd: Mapping[str, Any]) -> bool:
    return any(k.startswith(("VIT.", "face_landback.", "ir_back.")) for k in sd)


class PosterV2Adapter:
    """Reads official POSTER_V2 checkpoints (training dicts or bare state dicts, ``module.`` or not) and ferkit ones."""

    head_key = "head.weight"

    def inspect(self, ckpt: dict[str, Any]) -> dict[str, Any]:
        if "state" in ckpt and "param_groups" in ckpt and "state_dict" not in ckpt:
            raise CheckpointError(OPTIMIZER_ONLY_HINT)
        if ckpt.get("format") == FORMAT:
            return {"format": "ferkit", "model": ckpt.get("model"), "model_args": dict(ckpt.get("model_args") or {}),
                    "label_names": ckpt.get("label_names"), "num_classes": len(ckpt.get("label_names") or []) or None}
        sd = unwrap_state_dict(ckpt)
        if _is_official(sd):
            head = sd.get("VIT.head.linear.weight")
            if head is None:
                raise CheckpointError("official POSTER_V2 checkpoint has no 'VIT.head.linear.weight' (classifier)")
            return {"format": "official", "model": "poster_v2", "model_args": {}, "label_names": None,
                    "num_classes": int(head.shape[0])}
        if self.head_key in sd and any(k.startswith("fuser.") for k in sd):
            return {"format": "ferkit-state-dict", "model": None, "model_args": {}, "label_names": None,
                    "num_classes": int(sd[self.head_key].shape[0])}
        sample = ", ".join(list(sd)[:5])
        raise CheckpointError(f"not a POSTER++ checkpoint: expected official keys (VIT.*, ir_back.*, face_landback.*) "
                              f"or ferkit keys (fuser.*, image_net.*, ...); found {len(sd)} tensors such as {sample}")

    def load(self, model: nn.Module, ckpt: dict[str, Any], *, reset_head: bool = False) -> dict[str, Any]:
        info = self.inspect(ckpt)
        sd = unwrap_state_dict(ckpt)
        dropped: list[str] = []
        if info["format"] == "official":
            sd, dropped = official_to_ferkit(sd)
        if reset_head:
            sd = {k: v for k, v in sd.items() if not k.startswith("head.")}
        report = load_state_dict_strict(model, sd, ignore_missing=("head.",) if reset_head else ())
        report.update(format=info["format"], dropped_dead_keys=len(dropped))
        log.info("loaded %s POSTER++ checkpoint: %s tensors (%s); %d dead official keys ignored", info["format"],
                 report["loaded"], ", ".join(f"{k} {n}" for k, n in report["per_part"].items()), len(dropped))
        return report


# ---- the two backbone files of the official training recipe ---------------------------------------------------

def _ir50_stage_key(key: str) -> str:
    """``body.N.*`` (one sequence of 24 units, face.evoLVe layout) -> ``body1/2/3.M.*``; stage 4 -> ``""``."""
    m = re.match(r"^body\.(\d+)\.(.*)$", key)
    if not m:
        return key
    n, rest = int(m.group(1)), m.group(2)
    for stage, (start, end) in enumerate(((0, 3), (3, 7), (7, 21)), start=1):
        if start <= n < end:
            return f"body{stage}.{n - start}.{rest}"
    return ""  # units 21-23: stage 4, not used by POSTER++


def load_ir50(image_net: nn.Module, path, *, trust: bool = False) -> dict[str, int]:
    """Load ``ir50.pth`` (MS-Celeb-1M IR-50) into the image stream, either key layout, strictly.

    Returns the number of tensors loaded per stage."""
    sd = unwrap_state_dict(read_checkpoint(path, trust=trust))
    out = {}
    for k, v in sd.items():
        if k.startswith("output_layer."):
            continue
        k = _ir50_stage_key(k)
        if k:
            out[k] = v
    report = load_state_dict_strict(image_net, out)
    counts = dict(Counter(k.split(".", 1)[0] for k in out))
    log.info("ir50 weights from %s: %s", path, ", ".join(f"{k} {n}" for k, n in sorted(counts.items())))
    return counts | {"loaded": report["loaded"]}


def load_mobilefacenet(landmark_net: nn.Module, path, *, trust: bool = False) -> dict[str, int]:
    """Load ``mobilefacenet_model_best.pth.tar`` (68-landmark MobileFaceNet, 333 entries) strictly."""
    sd = unwrap_state_dict(read_checkpoint(path, trust=trust))
    report = load_state_dict_strict(landmark_net, sd)
    log.info("mobilefacenet weights from %s: %d tensors", path, report["loaded"])
    return {"loaded": report["loaded"]}
