"""``create_model``: resolve a name, read a checkpoint (if any), build, load strictly."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn

from ferkit import labels as _labels
from ferkit.checkpoint import read_checkpoint
from ferkit.config import to_dict
from ferkit.errors import CheckpointError
from ferkit.models._registry import ModelEntry, get_entry
from ferkit.models.base import FerModel

log = logging.getLogger(__name__)


def create_model(name: str, *, num_classes: int | None = None, label_names: Sequence[str] | str | None = None,
                 checkpoint: str | os.PathLike | Mapping[str, Any] | None = None, trust_checkpoint: bool = False,
                 reset_head: bool = False, allow_unverified: bool = False, **overrides: Any) -> nn.Module:
    """Create a registered model, optionally loading a checkpoint.

    Args:
        name: registered name (``ferkit.list_models()``), or ``name.tag`` for a pretrained weight
            (``ferkit.list_pretrained()``), fetched through the weights cache.
        num_classes: class count; inferred from the checkpoint when omitted. A conflict raises unless ``reset_head``.
        label_names: ordered class names or a data-set order name (``"rafdb"``); from the checkpoint when it has them.
        checkpoint: path (or already-read dict) of an official or ferkit checkpoint.
        trust_checkpoint: allow full unpickling of legacy checkpoints with Python objects (unsafe for untrusted files).
        reset_head: keep everything but the classifier (fine-tuning on another label set).
        allow_unverified: let a pretrained ``name.tag`` download weights that have no published SHA-256.
        **overrides: model config fields (see the model's config dataclass), e.g. ``vit_depth=4``.
    """
    base, _, tag = name.partition(".")
    entry = get_entry(base)
    if tag:
        if checkpoint is not None:
            raise ValueError(f"give either a pretrained tag ({name!r}) or checkpoint=, not both")
        from ferkit.models.pretrained import resolve_pretrained

        checkpoint, pcfg = resolve_pretrained(name, allow_unverified=allow_unverified)
        if pcfg.head == "aux":
            checkpoint = promote_aux_head(read_checkpoint(checkpoint, trust=trust_checkpoint))
        label_names = pcfg.label_names if label_names is None else label_names
    ckpt, args = None, dict(entry.defaults)
    if checkpoint is not None:
        ckpt = checkpoint if isinstance(checkpoint, Mapping) else read_checkpoint(checkpoint, trust=trust_checkpoint)
        ckpt = dict(ckpt)
        info = entry.adapter.inspect(ckpt)
        _check_family(info.get("model"), base, entry)
        args.update(info.get("model_args") or {})
        if not reset_head:
            num_classes, label_names = _classes_from_checkpoint(info, num_classes, label_names)
    args.update(overrides)
    model = entry.builder(label_names=label_names, num_classes=num_classes, trust_checkpoint=trust_checkpoint, **args)
    if not isinstance(model, FerModel):
        raise TypeError(f"the builder of model {base!r} returned a {type(model).__name__}; model builders must "
                        "return a ferkit.models.FerModel (docs/architecture.md)")
    model.model_name = base
    if ckpt is not None:
        model.load_report = entry.adapter.load(model, ckpt, reset_head=reset_head)
        _restore_data_config(model, ckpt)
    model.untrained = ckpt is None or reset_head
    return model


def _check_family(ckpt_model: str | None, base: str, entry: ModelEntry) -> None:
    """A checkpoint may load into its own model or a variant of the same family, nothing else."""
    if not ckpt_model or ckpt_model == base:
        return
    try:
        other_family = get_entry(ckpt_model.split(".")[0]).family
    except ValueError:
        other_family = ckpt_model
    if other_family != entry.family:
        raise CheckpointError(f"checkpoint is for model {ckpt_model!r}, not {base!r} (family {entry.family!r}); "
                              f"create_model({ckpt_model!r}, ...) loads it")


def _classes_from_checkpoint(info: dict[str, Any], num_classes: int | None, label_names) -> tuple[int | None, Any]:
    """Reconcile the requested class count / names with the checkpoint's; conflicts raise."""
    ck_n, ck_names = info.get("num_classes"), info.get("label_names")
    if num_classes is not None and ck_n is not None and num_classes != ck_n:
        raise CheckpointError(f"checkpoint has a {ck_n}-class head but num_classes={num_classes} was requested; "
                              "pass reset_head=True to replace the head")
    if label_names is not None and ck_names is not None:
        want = _labels.order(label_names if isinstance(label_names, str) else list(label_names))
        if list(want) != list(ck_names):
            raise CheckpointError(
                f"checkpoint classes are ordered {list(ck_names)}, but label_names={list(want)} was requested; "
                "ferkit maps orders by name at evaluation, so do not relabel a trained head (reset_head=True trains "
                "a new one)")
    if num_classes is None and label_names is None and ck_names is not None:  # say what the head is, e.g. 8 classes
        log.info("checkpoint head: %d classes %s", len(ck_names), list(ck_names))
    num_classes = num_classes or ck_n
    if label_names is None:
        label_names = ck_names
    if label_names is None and ck_n is not None:
        label_names = _labels.default_order(ck_n)
        log.warning("checkpoint carries no label names; assuming the %s order %s (pass label_names= to override)",
                    "RAF-DB" if ck_n == 7 else "AffectNet", list(label_names))
    return num_classes, label_names


def promote_aux_head(ckpt: Mapping[str, Any]) -> dict[str, Any]:
    """A ferkit checkpoint whose auxiliary head (``aux_head.*``, ``model_args["aux_head"]`` = its label order)
    becomes the classifier, with that order's label names; the main head is dropped."""
    ckpt = dict(ckpt)
    args = dict(ckpt.get("model_args") or {})
    order = args.get("aux_head")
    sd = dict(ckpt.get("state_dict") or {})
    if not order or "aux_head.weight" not in sd:
        raise CheckpointError("this checkpoint has no auxiliary head to use as its classifier")
    for part in ("weight", "bias"):
        sd[f"head.{part}"] = sd.pop(f"aux_head.{part}")
    args["aux_head"] = None
    ckpt.update(state_dict=sd, model_args=args, label_names=list(_labels.order(order)))
    return ckpt


def _restore_data_config(model: nn.Module, ckpt: Mapping[str, Any]) -> None:
    """The preprocessing a ferkit checkpoint was trained with (``data_config``: input size, mean / std,
    interpolation, grey, crop) replaces the model's defaults, with a log line when it differs. A saved ``None``
    (e.g. no crop rule: training read pre-cropped faces) keeps the model's value."""
    saved = ckpt.get("data_config")
    if not isinstance(saved, Mapping):
        return
    current = dict(getattr(model, "data_config", {}))
    changed = {k: v for k, v in saved.items()
               if k in KNOWN_DATA_KEYS and v is not None and to_dict(current.get(k)) != to_dict(v)}
    if changed:
        log.info("using the checkpoint's preprocessing %s (model default: %s)", changed,
                 {k: current.get(k) for k in changed})
        model.data_config = {**current, **{k: tuple(v) if isinstance(v, list) else v for k, v in changed.items()}}


KNOWN_DATA_KEYS = ("input_size", "mean", "std", "interpolation", "grayscale", "crop")

