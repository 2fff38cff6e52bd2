"""Behaviour shared by ferkit models: ordered label names, input config, self-describing checkpoints."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ferkit import labels as _labels
from ferkit.checkpoint import FORMAT, save_checkpoint
from ferkit.config import to_dict


class FerModel(nn.Module):
    """Mixin-style base. Subclasses set ``self.config`` (a dataclass) and call :meth:`_set_labels`.

    Attributes:
        model_name: registry name. label_names: ordered canonical class names (index -> name).
        data_config: input preprocessing (``input_size``, ``mean``, ``std``, ``interpolation``, ``family``).
        untrained: set by ``create_model`` when no trained head was loaded; inference marks such outputs.
    """

    model_name: str = ""  # set by create_model from the registry entry; constructors leave it alone
    data_config: dict[str, Any] = {}
    #: True when the classifier was never trained (no checkpoint, or a reset head): outputs are meaningless.
    untrained: bool = False
    #: layout forward() gives its convolutions; :func:`ferkit.nn.optimize.to_channels_last` switches it.
    memory_format: torch.memory_format = torch.contiguous_format
    #: what ``explain(method="auto")`` uses: ``"gradient"`` (any model) or ``"attention"`` (:meth:`attention_maps`).
    default_explanation: str = "gradient"
    #: optional ``training_loss(images, targets[, label_smoothing]) -> (loss, logits, parts)`` for models whose
    #: training objective is more than cross-entropy on their logits (MPA-FER's alignment terms, an auxiliary head);
    #: None: the trainer applies cross-entropy (with label smoothing) to ``forward(images)``.
    training_loss: Any = None
    #: state-dict prefixes of the classifier, replaced by ``create_model(..., reset_head=True)``
    head_prefixes: tuple[str, ...] = ("head.",)

    # ---- optional hooks: the defaults below are what the trainer, inference, export and explain use ------------

    def trainable_parameters(self) -> list[nn.Parameter]:
        """Parameters the optimiser updates (default: every parameter with ``requires_grad``)."""
        return [p for p in self.parameters() if p.requires_grad]

    def prepare_training(self, train_dataset: Any, **kwargs: Any) -> None:
        """Called once before training with the untransformed training set (``cache_dir``, ``device``,
        ``batch_size``, ``num_workers`` as keywords), e.g. MPA-FER's class prototypes. Default: nothing."""

    def prepare_inference(self) -> FerModel:
        """Called once before inference (e.g. MPA-FER computes its class text features). Default: nothing."""
        return self

    def exportable(self) -> nn.Module:
        """The module ONNX export traces and gradient explanations differentiate: images (B, 3, S, S) -> logits
        (B, C) with no state outside tensors (MPA-FER folds its text features in as constants). Default: self."""
        return self

    def attention_maps(self, x: torch.Tensor) -> dict[int, torch.Tensor]:
        """Attention the model pays to each image position, per scale ``{scale: (B, M, M)}`` (POSTER++).

        Raises:
            ValueError: the model has no attention maps (use a gradient explanation).
        """
        raise ValueError(f"{type(self).__name__} has no attention maps; use a gradient explanation method")

    def _set_labels(self, label_names: Sequence[str] | str | None, num_classes: int | None, default: Sequence[str]):
        if isinstance(label_names, str):
            label_names = _labels.order(label_names)
        if label_names is None:
            label_names = default if num_classes in (None, len(default)) else _labels.default_order(num_classes)
        names = _labels.order(list(label_names))
        if num_classes is not None and num_classes != len(names):
            raise ValueError(f"num_classes={num_classes} but {len(names)} label names were given: {list(names)}")
        self.label_names: tuple[str, ...] = names

    @property
    def num_classes(self) -> int:
        return len(self.label_names)

    def checkpoint_state_dict(self) -> dict[str, torch.Tensor]:
        """Tensors that define this model in a ferkit checkpoint (all of them by default)."""
        return {k: v.detach().cpu() for k, v in self.state_dict().items()}

    def checkpoint_dict(self, **meta: Any) -> dict[str, Any]:
        """ferkit checkpoint content: model name and args, label names, tensors, free-form ``meta``."""
        return {"format": FORMAT, "model": self.model_name, "model_args": to_dict(self.config),
                "label_names": list(self.label_names), "data_config": to_dict(self.data_config),
                "state_dict": self.checkpoint_state_dict(), "meta": meta}

    def save(self, path: str | Path, **meta: Any) -> Path:
        """Atomically write a ferkit checkpoint (``.pt`` or ``.safetensors``)."""
        return save_checkpoint(self.checkpoint_dict(**meta), path)

