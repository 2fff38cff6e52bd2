"""``create_model``: resolve a name, read a checkpoint (if any), build, load strictly."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn

from ferkit import labels as _labels
from ferkit.checkpoint import read_checkpoint
from ferkit.errors import CheckpointError
from ferkit.models._registry import get_entry

log = logging.getLogger(__name__)


def create_model(name: str, *, num_classes: int | None = None, label_names: Sequence[str] | str | None = None,
                 checkpoint: str | os.PathLike | Mapping[str, Any] | None = None, trust_checkpoint: bool = False,
                 reset_head: bool = False, **overrides: Any) -> nn.Module:
    """Create a registered model, optionally loading a checkpoint.

    Args:
        name: registered name (``ferkit.list_models()``), or ``name.tag`` for a pretrained weight
            (``ferkit.list_pretrained()``), fetched through the weights cache.
        num_classes: class count; inferred from the checkpoint when omitted. A conflict raises unless ``reset_head``.
        label_names: ordered class names or a data-set order name (``"rafdb"``); from the checkpoint when it has them.
        checkpoint: path (or already-read dict) of an official or ferkit checkpoint.
        trust_checkpoint: allow full unpickling of legacy checkpoints holding Python objects (unsafe for untrusted files).
        reset_head: keep everything but the classifier (fine-tuning on another label set).
        **overrides: model config fields (see the model's config dataclass), e.g. ``vit_depth=4``.
    """
    base, _, tag = name.partition(".")
    entry = get_entry(base)
    if tag:
        if checkpoint is not None:
            raise ValueError(f"give either a pretrained tag ({name!r}) or checkpoint=, not both")
        from ferkit.hub import resolve_pretrained

        checkpoint, pcfg = resolve_pretrained(name)
        if label_names is None:
            label_names = pcfg.label_names
    ckpt = None
    args = {**entry.defaults}
    if checkpoint is not None:
        ckpt = dict(checkpoint) if isinstance(checkpoint, Mapping) else read_checkpoint(checkpoint, trust=trust_checkpoint)
        info = entry.adapter.inspect(ckpt)
        if info.get("model") and info["model"] != base:
            other = info["model"].split(".")[0]
            try:
                other_family = get_entry(other).family
            except ValueError:
                other_family = other
            if other_family != entry.family:
                raise CheckpointError(f"checkpoint is for model {info['model']!r}, not {base!r} "
                                      f"(family {entry.family!r}); create_model({info['model']!r}, ...) loads it")
        args.update(info.get("model_args") or {})
        ck_n, ck_names = info.get("num_classes"), info.get("label_names")
        if not reset_head:
            if num_classes is not None and ck_n is not None and num_classes != ck_n:
                raise CheckpointError(f"checkpoint has a {ck_n}-class head but num_classes={num_classes} was requested; "
                                      "pass reset_head=True to replace the head")
            if label_names is not None and ck_names is not None:
                want = _labels.order(label_names) if isinstance(label_names, str) else _labels.order(list(label_names))
                if list(want) != list(ck_names):
                    raise CheckpointError(f"checkpoint classes are ordered {list(ck_names)}, but label_names={list(want)} "
                                          "was requested; ferkit maps orders by name at evaluation — do not relabel a "
                                          "trained head (or pass reset_head=True to train a new one)")
            num_classes = num_classes or ck_n
            label_names = label_names if label_names is not None else ck_names
            if label_names is None and ck_n is not None:
                label_names = _labels.default_order(ck_n)
                log.warning("checkpoint carries no label names; assuming the %s order %s (pass label_names= to override)",
                            "RAF-DB" if ck_n == 7 else "AffectNet", list(label_names))
    args.update(overrides)
    model = entry.builder(label_names=label_names, num_classes=num_classes, trust_checkpoint=trust_checkpoint, **args)
    model.model_name = base
    if ckpt is not None:
        model.load_report = entry.adapter.load(model, ckpt, reset_head=reset_head)
    return model
