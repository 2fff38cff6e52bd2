"""Combining per-scale attention maps (``{scale: (B, M, M)}`` from ``FerModel.attention_maps``) into one map."""

from __future__ import annotations

import torch


def attention_maps(model: torch.nn.Module, x: torch.Tensor) -> dict[int, torch.Tensor]:
    """``model.attention_maps(x)`` without gradients: ``{scale: (B, M, M)}`` (POSTER++; see
    :meth:`ferkit.models.base.FerModel.attention_maps`).

    Raises:
        ValueError: the model has no attention maps.
    """
    hook = getattr(model, "attention_maps", None)
    if not callable(hook):
        raise ValueError(f"{type(model).__name__} has no attention maps; use a gradient explanation method")
    with torch.no_grad():
        return hook(x)


def combine(maps: dict[int, torch.Tensor], scale: str | int = "last", size: int | None = None) -> torch.Tensor:
    """One map per image from :func:`attention_maps`: the last (highest-level) scale, a given scale, or ``"mean"`` of
    all scales after each is min-max normalised and upsampled (bilinear) to the largest map. -> (B, M, M)."""
    if scale == "last":
        return maps[max(maps)]
    if scale == "mean":
        side = size or max(m.shape[-1] for m in maps.values())
        ups = [normalize(_resize(m, side)) for m in maps.values()]
        return torch.stack(ups).mean(0)
    if int(scale) not in maps:
        raise ValueError(f"scale {scale} not in the model's scales {sorted(maps)}")
    return maps[int(scale)]


def normalize(m: torch.Tensor) -> torch.Tensor:
    """Min-max to [0, 1] per map (B, H, W); a constant map becomes 0."""
    flat = m.flatten(1)
    lo, hi = flat.min(1).values[:, None, None], flat.max(1).values[:, None, None]
    return torch.where(hi > lo, (m - lo) / (hi - lo).clamp_min(1e-12), torch.zeros_like(m))


def _resize(m: torch.Tensor, side: int) -> torch.Tensor:
    return torch.nn.functional.interpolate(m[:, None], size=(side, side), mode="bilinear", align_corners=False)[:, 0]
