"""Checkpoint adapter for MPA-FER: ferkit checkpoints (or bare ``{ctx, vprompt}`` state dicts).

A checkpoint holds only the learned prompts (plus prototypes in training checkpoints). They are meaningful only on
the CLIP they were trained with, so loading compares the CLIP identity recorded in ``meta["clip"]`` (architecture +
SHA-256 of the weights file) with the model's and refuses a mismatch unless the model was built with
``allow_clip_mismatch=True``.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import nn

from ferkit.checkpoint import FORMAT, check_state_dict, unwrap_state_dict
from ferkit.errors import CheckpointError

log = logging.getLogger(__name__)

LEARNED = ("ctx", "vprompt")


def check_clip_identity(model: nn.Module, recorded: dict[str, Any] | None) -> None:
    """Refuse a checkpoint trained on another CLIP (architecture or weights SHA-256) unless explicitly allowed."""
    own = model.clip_identity
    if not recorded:
        log.warning("checkpoint records no CLIP identity; cannot verify it was trained on %s (sha256 %s)",
                    own.get("arch"), str(own.get("sha256"))[:16])
        return
    same = recorded.get("arch") == own.get("arch") and recorded.get("sha256") == own.get("sha256")
    if same:
        return
    msg = (f"checkpoint prompts were trained on CLIP {recorded.get('arch')} with weights sha256 "
           f"{str(recorded.get('sha256'))[:16]}... ({recorded.get('file') or recorded.get('source')}), but this model "
           f"uses CLIP {own.get('arch')} sha256 {str(own.get('sha256'))[:16]}... "
           f"({own.get('file') or own.get('source')})."
           " Learned prompts only make sense on the CLIP they were trained with: pass clip_weights=<that file>, or "
           "allow_clip_mismatch=True to load anyway")
    if not getattr(model, "allow_clip_mismatch", False):
        raise CheckpointError(msg)
    log.warning("%s (allowed by allow_clip_mismatch=True)", msg)


class MPAFERAdapter:
    """Reads ferkit MPA-FER checkpoints; strict on the learned tensors' names and shapes."""

    def inspect(self, ckpt: dict[str, Any]) -> dict[str, Any]:
        if ckpt.get("format") == FORMAT:
            names = ckpt.get("label_names")
            return {"format": "ferkit", "model": ckpt.get("model"), "model_args": dict(ckpt.get("model_args") or {}),
                    "label_names": names, "num_classes": len(names) if names else None}
        sd = unwrap_state_dict(ckpt)
        if "ctx" in sd and set(sd) <= {*LEARNED, "prototypes"}:
            n = int(sd["ctx"].shape[0]) if sd["ctx"].dim() == 3 else None
            return {"format": "ferkit-state-dict", "model": None, "model_args": {}, "label_names": None,
                    "num_classes": n}
        sample = ", ".join(list(sd)[:6])
        raise CheckpointError(f"not an MPA-FER checkpoint: expected a ferkit checkpoint or a state dict with 'ctx' "
                              f"(and 'vprompt'); found {len(sd)} tensors such as {sample}")

    def load(self, model: nn.Module, ckpt: dict[str, Any], *, reset_head: bool = False) -> dict[str, Any]:
        info = self.inspect(ckpt)
        meta = ckpt.get("meta") or {}
        check_clip_identity(model, meta.get("clip"))
        dsha = meta.get("descriptions_sha256")
        if dsha and model.descriptions_sha256 and dsha != model.descriptions_sha256:
            log.warning("checkpoint was trained with another descriptions file (sha256 %s..., now %s...); this only "
                        "matters for further training", dsha[:12], model.descriptions_sha256[:12])
        sd = unwrap_state_dict(ckpt)
        protos = sd.pop("prototypes", None)
        if reset_head and model.config.csc:
            sd.pop("ctx", None)  # class-specific context belongs to the old label set
        own = model.checkpoint_state_dict()
        check_state_dict(own, sd, what="MPA-FER checkpoint", hint="check n_ctx, n_vprompt, csc, clip_arch",
                         ignore_missing=("ctx",) if reset_head and model.config.csc else ())
        with torch.no_grad():
            for k, v in sd.items():
                getattr(model, k).copy_(v.to(getattr(model, k)))
        if protos is not None and not reset_head:
            model.set_prototypes(protos, meta.get("prototype_key"))
        report = {"format": info["format"], "loaded": sorted(sd), "prototypes": protos is not None and not reset_head}
        log.info("loaded MPA-FER %s checkpoint: %s", info["format"], ", ".join(report["loaded"]))
        return report
