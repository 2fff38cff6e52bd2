"""``explain``: where the model looks, per detected face, as heat maps over the face crop and over the photo."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ferkit.explain import overlay
from ferkit.explain.gradient import METHODS as GRADIENT_METHODS
from ferkit.explain.gradient import gradient_map
from ferkit.explain.maps import attention_maps, combine
from ferkit.infer.records import FaceResult, Record

log = logging.getLogger(__name__)

METHODS = ("auto", "attention", *GRADIENT_METHODS)


@dataclass
class FaceExplanation:
    """One face: its result, the model's input crop (S, S, 3) uint8, the raw map (model resolution), the display
    heat map (S, S) in [0, 1], the crop -> image affine matrix (2, 3), and the explained label (None for attention)."""

    face: FaceResult
    crop: np.ndarray
    raw: np.ndarray
    heat: np.ndarray
    matrix: np.ndarray
    target: str | None

    def panel(self, alpha: float = 0.5) -> np.ndarray:
        """Crop | heat map | overlay side by side, as the paper's triplets: (S, 3S, 3) uint8."""
        return np.concatenate([self.crop, overlay.colorize(self.heat), overlay.blend(self.crop, self.heat,
                                                                                     alpha=alpha)], axis=1)


@dataclass
class Explanation:
    """Result for one input: its record, the method used, one :class:`FaceExplanation` per face, and the photo with
    every face's heat map pasted in (None when the input could not be read)."""

    record: Record
    method: str
    faces: list[FaceExplanation] = field(default_factory=list)
    overlay: np.ndarray | None = None


def resolve_method(method: str, model: Any) -> str:
    """``auto``: the model's ``default_explanation`` (``attention`` for POSTER++; ``gradient`` otherwise, as MPA-FER's
    Fig. 3 back-propagates to the input)."""
    if method not in METHODS:
        raise ValueError(f"unknown explanation method {method!r}; expected one of {METHODS}")
    if method == "auto":
        return getattr(model, "default_explanation", "gradient")
    return method


def explain(recognizer: Any, x: Any, *, method: str = "auto", scale: str | int = "last", target: str | None = None,
            out_dir: str | os.PathLike | None = None, alpha: float = 0.5) -> Explanation | list[Explanation]:
    """Explain the recognizer's prediction for every face of ``x`` (same inputs as ``Recognizer.predict``).

    Args:
        recognizer: from :func:`ferkit.load` with the torch backend.
        method: ``auto``, ``attention`` (POSTER++ landmark-to-image cross-attention, Figs. 4/13), ``gradient``,
            ``input_x_gradient`` or ``gradcam`` (MPA-FER; see :mod:`ferkit.explain.gradient`).
        scale: attention only: ``"last"`` (7x7, as Fig. 13), ``"mean"`` of all scales, or a scale index 0/1/2.
        target: gradient methods: label to explain (default: each face's predicted label).
        out_dir: write ``<name>_explain.png`` (photo overlay) and ``<name>_face<i>.png`` (crop | map | overlay).

    Returns:
        One :class:`Explanation` for a single image, else a list.
    """
    from ferkit.infer.inputs import is_single

    model = getattr(recognizer.backend, "model", None)
    if model is None:
        raise ValueError(f"explanations need the PyTorch backend, not {recognizer.backend.name!r} (load the model "
                         "with backend='torch')")
    method = resolve_method(method, model)
    out = []
    for k, frame in enumerate(recognizer.predict_frames(x)):
        exp = _explain_frame(recognizer, model, frame, method, scale, target)
        if out_dir is not None:
            write(exp, out_dir, _stem(frame.record.input, k), alpha=alpha)
        out.append(exp)
    return out[0] if is_single(x) else out


def _explain_frame(recognizer: Any, model: torch.nn.Module, frame: Any, method: str, scale: Any,
                   target: str | None) -> Explanation:
    exp = Explanation(frame.record, method)
    if frame.rgb is None or not frame.record.faces:
        exp.overlay = frame.rgb
        return exp
    pre = recognizer.preprocessor
    crops = [pre.crop_face(frame.rgb, f) for f in frame.faces]
    batch = pre.batch(crops).to(recognizer.backend.device)
    raw, targets = _maps(model, batch, method, scale, target, recognizer.label_names)
    heat_acc = np.zeros(frame.rgb.shape[:2])
    cover_acc = np.zeros(frame.rgb.shape[:2])
    for i, (face, result) in enumerate(zip(frame.faces, frame.record.faces)):
        heat = _display_map(raw[i], pre.size, method)
        matrix = pre.crop_matrix(frame.rgb, face)
        display_crop = crops[i] if crops[i].shape[:2] == (pre.size, pre.size) else _resize_rgb(crops[i], pre.size)
        name = None if targets is None else recognizer.label_names[int(targets[i])]
        exp.faces.append(FaceExplanation(result, display_crop, raw[i], heat, matrix, name))
        pasted, cover = overlay.paste(heat, matrix, frame.rgb.shape[:2])
        take = cover > cover_acc  # where faces overlap, the first (best) detection wins
        heat_acc[take], cover_acc[take] = pasted[take], cover[take]
    exp.overlay = overlay.blend(frame.rgb, heat_acc, mask=cover_acc)
    return exp


def _maps(model: torch.nn.Module, batch: torch.Tensor, method: str, scale: Any, target: str | None,
          label_names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray | None]:
    if method == "attention":
        return combine(attention_maps(model, batch), scale).float().cpu().numpy(), None
    idx = None
    if target is not None:
        from ferkit.labels import canonical

        name = canonical(target)
        if name not in label_names:
            raise ValueError(f"target {target!r} is not one of the model's labels {list(label_names)}")
        idx = [label_names.index(name)] * batch.shape[0]
    maps, targets = gradient_map(model, batch, idx, method)
    return maps.float().cpu().numpy(), targets.cpu().numpy()


def _display_map(raw: np.ndarray, size: int, method: str) -> np.ndarray:
    """Model-resolution map -> (size, size) in [0, 1]: attention / Grad-CAM min-max normalised after bilinear
    upsampling; pixel gradients blurred (sigma = size / 56) and scaled by their 99th percentile."""
    heat = overlay.resize_map(raw, size) if raw.shape[0] != size else raw.astype(np.float64)
    if method in ("gradient", "input_x_gradient"):
        heat = overlay.smooth(heat, size / 56)
        top = np.percentile(heat, 99)
        return np.clip(heat / top, 0, 1) if top > 0 else np.zeros_like(heat)
    lo, hi = heat.min(), heat.max()
    return (heat - lo) / (hi - lo) if hi > lo else np.zeros_like(heat)


def _resize_rgb(rgb: np.ndarray, size: int) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(rgb).resize((size, size), Image.BILINEAR))


def _stem(name: str, index: int) -> str:
    return Path(name).stem if not name.startswith("<") else f"image{index}"


def write(exp: Explanation, out_dir: str | os.PathLike, stem: str, *, alpha: float = 0.5) -> list[Path]:
    """Save the photo overlay (with boxes and labels) and one panel per face as PNG; returns the paths."""
    from PIL import Image

    from ferkit.checkpoint import atomic_write_bytes
    from ferkit.infer.draw import annotate

    out_dir = Path(out_dir)
    images = {}
    if exp.overlay is not None:
        images[f"{stem}_explain.png"] = annotate(exp.overlay, exp.record.faces, bars=False,
                                                 untrained=exp.record.untrained)
    for i, fe in enumerate(exp.faces):
        images[f"{stem}_face{i}.png"] = fe.panel(alpha)
    paths = []
    for name, arr in images.items():
        img = Image.fromarray(arr)
        atomic_write_bytes(out_dir / name, lambda f, img=img: img.save(f, format="PNG"))
        paths.append(out_dir / name)
    return paths
