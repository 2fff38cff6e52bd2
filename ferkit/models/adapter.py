"""The checkpoint adapter a model gets when its family brings none: ferkit's own checkpoints, loaded strictly."""

from __future__ import annotations

from typing import Any

from torch import nn

from ferkit.checkpoint import FORMAT, load_state_dict_strict, unwrap_state_dict
from ferkit.errors import CheckpointError


class FerkitCheckpointAdapter:
    """Reads checkpoints written by :meth:`ferkit.models.FerModel.save` (format ``ferkit``) for any model.

    ``reset_head`` drops the tensors under the model's ``head_prefixes`` (the classifier) and keeps its fresh ones.
    """

    def inspect(self, ckpt: dict[str, Any]) -> dict[str, Any]:
        if ckpt.get("format") != FORMAT:
            raise CheckpointError(f"expected a ferkit checkpoint (format {FORMAT!r}), got format "
                                  f"{ckpt.get('format')!r}; this model family reads no other layout")
        names = ckpt.get("label_names")
        return {"format": "ferkit", "model": ckpt.get("model"), "model_args": dict(ckpt.get("model_args") or {}),
                "label_names": names, "num_classes": len(names) if names else None}

    def load(self, model: nn.Module, ckpt: dict[str, Any], *, reset_head: bool = False) -> dict[str, Any]:
        state = unwrap_state_dict(ckpt)
        prefixes = tuple(getattr(model, "head_prefixes", ("head.",)))
        if reset_head:
            state = {k: v for k, v in state.items() if not k.startswith(prefixes)}
        name = getattr(model, "model_name", type(model).__name__)
        report = load_state_dict_strict(model, state, what=f"{name} checkpoint",
                                        ignore_missing=prefixes if reset_head else ())
        return {**report, "reset_head": reset_head}
