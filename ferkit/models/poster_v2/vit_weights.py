"""Paper Table 7: the POSTER++ token fuser initialised from a pretrained ViT (ImageNet-21k ViT-Base in the paper).

Reads a timm ``VisionTransformer`` checkpoint (torch file or safetensors, e.g. ``vit_base_patch16_224.augreg_in21k``)
and copies what has a counterpart in the fuser: ``cls_token``, the first ``vit_depth`` blocks and the final ``norm``.
The ViT's ``pos_embed`` (positions of 196 image patches, not of POSTER++'s multi-scale tokens), ``patch_embed``,
``head`` and later blocks have none and are left out, as a name-and-shape filtered load (the official code's way of
loading pretrained files) would. The fuser keeps its own head count (``vit_heads``, 8 officially; 12 runs the blocks
as ViT-Base does).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

import torch
from torch import nn

from ferkit.errors import CheckpointError

log = logging.getLogger(__name__)

BLOCK_PARTS = ("norm1.weight", "norm1.bias", "attn.qkv.weight", "attn.qkv.bias", "attn.proj.weight", "attn.proj.bias",
               "norm2.weight", "norm2.bias", "mlp.fc1.weight", "mlp.fc1.bias", "mlp.fc2.weight", "mlp.fc2.bias")


def timm_vit_to_fuser(sd: Mapping[str, torch.Tensor], depth: int) -> dict[str, torch.Tensor]:
    """timm ViT keys -> ``TokenFuser`` keys for ``depth`` blocks (everything but ``pos_embed``).

    Raises:
        CheckpointError: a needed key is missing, or a used block holds tensors the fuser has no place for
            (e.g. LayerScale ``ls1.gamma``).
    """
    want = ["cls_token", *(f"blocks.{i}.{p}" for i in range(depth) for p in BLOCK_PARTS), "norm.weight", "norm.bias"]
    missing = [k for k in want if k not in sd]
    if missing:
        n_blocks = len({k.split(".")[1] for k in sd if k.startswith("blocks.")})
        raise CheckpointError(f"not a timm ViT checkpoint for a {depth}-block fuser ({n_blocks} blocks found): "
                              f"{len(missing)} missing key(s) such as {', '.join(missing[:6])}")
    extra = [k for k in sd if k.startswith(tuple(f"blocks.{i}." for i in range(depth))) and k not in want]
    if extra:
        raise CheckpointError("the ViT's blocks hold tensors the POSTER++ fuser has no place for: "
                              + ", ".join(extra[:6]))
    return {k: sd[k] for k in want}


def load_vit_init(model: nn.Module, source: str | os.PathLike | Mapping[str, torch.Tensor], *,
                  trust: bool = False) -> dict[str, int]:
    """Initialise ``model.fuser`` (a :class:`PosterV2` with ``use_vit=True``) from a timm ViT checkpoint, strictly:
    a width or shape mismatch raises and names the tensors. Returns the number of tensors loaded and left out."""
    from ferkit.checkpoint import load_state_dict_strict, read_checkpoint, unwrap_state_dict

    if getattr(model, "fuser", None) is None:
        raise CheckpointError("vit_init needs the ViT token fuser: this model has use_vit=False")
    sd = dict(source) if isinstance(source, Mapping) else unwrap_state_dict(read_checkpoint(source, trust=trust))
    mapped = timm_vit_to_fuser(sd, len(model.fuser.blocks))
    load_state_dict_strict(model.fuser, mapped, ignore_missing=("pos_embed",))
    log.info("fuser initialised from ViT %s: %d tensors (cls_token, %d blocks, norm); %d left out (pos_embed, "
             "patch_embed, head, later blocks)", source if not isinstance(source, Mapping) else "state dict",
             len(mapped), len(model.fuser.blocks), len(sd) - len(mapped))
    return {"loaded": len(mapped), "left_out": len(sd) - len(mapped)}
