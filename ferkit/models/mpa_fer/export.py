"""MPA-FER as a plain image classifier: the class text features folded in as a constant (``MPAFER.exportable``)."""

from __future__ import annotations

import torch
from torch import nn


class FoldedTextModel(nn.Module):
    """MPA-FER with its class text features as a constant buffer: images (B, 3, S, S) -> logits (B, C)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        with torch.no_grad():
            self.register_buffer("text_features", model.text_features().detach().clone())  # (C, E)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        z_g, z_l = self.model.encode_image(images, local=self.model.config.local_align)
        return self.model.logits_from_features(z_g, z_l, self.text_features)
