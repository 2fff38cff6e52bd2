"""``ferkit.load``: one call from a model name (or checkpoint, or ONNX file) to a ready :class:`Recognizer`."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ferkit.device import resolve_device
from ferkit.infer.backends import OnnxBackend, OpenVinoBackend, TorchBackend
from ferkit.infer.detection import make_detector
from ferkit.infer.precision import (
    canonical,
    canonical_backend,
    choose_backend,
    for_onnx_file,
    for_torch_model,
    fp32_model,
    int8_model,
)
from ferkit.infer.preprocess import resolve_crop
from ferkit.infer.recognizer import Recognizer

log = logging.getLogger(__name__)


def load(model: str | os.PathLike | nn.Module | None = None, *, checkpoint: str | os.PathLike | None = None,
         detector: Any = "yunet", device: str = "auto", backend: str | None = None, batch_size: int = 8,
         precision: str | None = None, crop: Any = "auto", logits: bool = False, channel_order: str = "rgb",
         detector_weights: Any = None, score_threshold: float | None = None, max_side: int | None = None,
         trust_checkpoint: bool = False, optimize: bool = True, allow_unverified: bool = False,
         workers: int | None = None, detect_every: int = 1, track: bool | None = None,
         calibrate: str | os.PathLike | None = None, calibrate_count: int | None = 256,
         **model_overrides: Any) -> Recognizer:
    """Load a facial-expression recognizer.

    Args:
        model: registered name (``"poster_v2"``, ``"mpa_fer_vit_b16"``), pretrained ``arch.tag``
            (``"poster_v2.rafdb"``), a ``.onnx`` file exported by ``ferkit export onnx``, or a ferkit model object.
            ``None``: ferkit's default model (``ferkit.models.DEFAULT_MODEL``, shipped in the package, trained on FER+).
        checkpoint: ferkit or official checkpoint for a registered name.
        detector: a registered name (:func:`ferkit.detect.list_detectors`; ``"yunet"``, the default, has its weights
            shipped with ferkit; ``"none"``, alias ``"skip"``: every image is one pre-cropped face; add one with
            :func:`ferkit.detect.register_detector`), an object with ``detect(rgb) -> list[Face]``, or a callable
            returning boxes.
        device: ``"auto"`` (cuda > mps > cpu), ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"``.
        backend: the runtime: ``"torch"``, ``"onnx"`` (onnxruntime), ``"openvino"`` or ``"auto"``
            (:func:`ferkit.infer.precision.choose_backend`: on the CPU OpenVINO, else onnxruntime, else PyTorch for
            fp32). A PyTorch model run with ``onnx``/``openvino`` is exported once (parity-checked) and cached under
            ``$FERKIT_HOME``. Default: ``"onnx"`` for a ``.onnx`` path or int8, ``"auto"`` with ``precision="auto"``,
            else ``"torch"``.
        batch_size: images read and faces classified per step.
        precision: ``"auto"`` (picked from the CPU flags / GPU, :func:`ferkit.device.choose_precision`; the choice
            and its reason are logged at INFO and kept in ``Recognizer.precision``), ``"fp32"``, ``"bf16"``,
            ``"fp16"`` (autocast; fp16 needs a GPU) or ``"int8"`` (onnxruntime, CPU: an int8 ``.onnx`` file, or a
            PyTorch model quantized once with ``calibrate``). None: fp32, or an ONNX file's own precision.
        calibrate: folder of face images (pre-cropped) to calibrate the int8 quantization of a PyTorch model;
            ``calibrate_count`` of them are used (None: all). The int8 file is cached under ``$FERKIT_HOME``.
        crop: ``"auto"`` (preset of the pretrained weights; ``none`` with detector ``none``; else ``square``), a preset
            name of ``ferkit.detect.CROP_PRESETS`` or ``{"method": ..., "margin": ...}``.
        logits: add raw logits to every face. channel_order: ``"rgb"`` or ``"bgr"`` for numpy inputs.
        detector_weights, score_threshold, max_side: passed to :func:`ferkit.detect.create_detector`.
        trust_checkpoint: allow unpickling a legacy checkpoint (trusted files only).
        allow_unverified: let a pretrained ``model`` download weights without a published SHA-256.
        optimize: run the ``for_inference`` copy of the model (BatchNorm folded, channels-last).
        workers, detect_every, track: overlapped pipeline threads and video tracking (:class:`Recognizer`).
        **model_overrides: model options for ``create_model`` (e.g. ``clip_weights=PATH`` for MPA-FER).

    Example:
        >>> rec = ferkit.load("poster_v2", checkpoint="poster_v2_rafdb.pt", detector="yunet")
        >>> rec.predict("photo.jpg").faces[0].label
        'happiness'
    """
    if model is None:
        if checkpoint is not None:
            raise ValueError("checkpoint= needs the model it belongs to (model='poster_v2', ...)")
        from ferkit.models.pretrained import DEFAULT_MODEL

        model = DEFAULT_MODEL
    onnx_path = _onnx_path(model)
    precision = canonical(precision)
    backend = canonical_backend(backend)
    if backend is None and precision == "auto":
        backend = "auto"
    if onnx_path is not None and not onnx_path.is_file():
        raise FileNotFoundError(f"exported model not found: {onnx_path}")
    torch_device = resolve_device(device)  # validates the string before anything expensive happens
    if onnx_path is not None:
        from ferkit.export.sidecar import read_sidecar

        choice = for_onnx_file(precision, onnx_path, read_sidecar(onnx_path))
    else:
        choice = for_torch_model(precision, torch_device, calibrate=calibrate)
    runtime = choose_backend(backend, choice.precision, torch_device, onnx_file=onnx_path is not None)
    det, det_name = make_detector(detector, weights=detector_weights, device=str(torch_device),
                                  score_threshold=score_threshold, max_side=max_side,
                                  trust_checkpoint=trust_checkpoint)
    if onnx_path is not None:
        clf = _exported_backend(runtime.name, onnx_path, device)
    else:
        net = model if isinstance(model, nn.Module) else _create(
            str(model), checkpoint, trust_checkpoint, dict(model_overrides, allow_unverified=allow_unverified))
        clf = None
        if runtime.name != "torch":
            try:
                path = int8_model(net, calibrate, calibrate_count) if choice.precision == "int8" else fp32_model(net)
                clf = _exported_backend(runtime.name, path, "cpu" if choice.precision == "int8" else device)
            except Exception as e:  # noqa: BLE001 - "auto" must not fail where PyTorch works
                if backend != "auto" or choice.precision == "int8":
                    raise
                log.warning("backend auto: %s could not run %s (%s); using PyTorch", runtime.name,
                            getattr(net, "model_name", "the model"), e)
                runtime = runtime._replace(name="torch", reason=f"the faster runtime failed: {e}")
        if clf is None:
            clf = TorchBackend(net, device=torch_device, precision=choice.precision, optimize=optimize)
    clf.backend_reason = runtime.reason
    clf.precision, clf.precision_reason = choice.precision, choice.reason
    # say what "auto" (or int8 / bf16) chose; the plain fp32 default needs no announcement (DEBUG)
    level = logging.DEBUG if precision in (None, "fp32") and choice.precision == "fp32" else logging.INFO
    log.log(level, "precision %s: %s", choice.precision, choice.reason)
    log.log(logging.DEBUG if backend in (None, "torch") else logging.INFO, "backend %s: %s", clf.name, runtime.reason)
    crop_cfg = resolve_crop(crop, detector_name=det_name,
                            pretrained_crop=_pretrained_crop(model) or clf.data_config.get("crop"))
    return Recognizer(clf, det, detector_name=det_name, crop=crop_cfg, batch_size=batch_size, logits=logits,
                      channel_order=channel_order, workers=workers, detect_every=detect_every, track=track)


def _exported_backend(name: str, path: Path, device: Any) -> Any:
    return OpenVinoBackend(path, device=device) if name == "openvino" else OnnxBackend(path, device=device)


def _create(name: str, checkpoint: Any, trust: bool, overrides: dict[str, Any]) -> nn.Module:
    from ferkit.models import create_model

    if checkpoint is None and "." not in name:
        from ferkit.models.pretrained import DEFAULT_MODEL

        log.warning("model %r has no trained weights (no checkpoint given): its predictions are meaningless and "
                    "marked 'untrained'; pass checkpoint=PATH, or use a pretrained name (default: %s; "
                    "`ferkit models --pretrained` lists them)", name, DEFAULT_MODEL)
        with torch.random.fork_rng():  # the same random weights on every run (seeded), the caller's RNG untouched
            torch.manual_seed(0)
            return create_model(name, checkpoint=checkpoint, trust_checkpoint=trust, **overrides)
    return create_model(name, checkpoint=checkpoint, trust_checkpoint=trust, **overrides)


def _onnx_path(model: Any) -> Path | None:
    if isinstance(model, (str, os.PathLike)) and str(model).lower().endswith(".onnx"):
        return Path(model)
    return None


def _pretrained_crop(model: Any) -> str | None:
    """Crop preset of pretrained weights ``arch.tag`` (None for anything else)."""
    if not isinstance(model, str) or "." not in model or _onnx_path(model):
        return None
    from ferkit.models.pretrained import get_pretrained_cfg

    try:
        return get_pretrained_cfg(model).crop
    except ValueError:
        return None
