"""Classifier backends behind the recognizer: a PyTorch model, or an exported ONNX file run with onnxruntime or
OpenVINO.

All take a batch of normalised face crops (B, 3, S, S) float32 and return float32 logits (B, C) on the CPU, and
expose ``label_names``, ``data_config`` and ``model_name``.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ferkit.device import autocast, resolve_device, resolve_precision
from ferkit.errors import ConfigError
from ferkit.models.base import FerModel

log = logging.getLogger(__name__)


class TorchBackend:
    """A ferkit model in eval mode on ``device``, optionally the ``for_inference`` copy (BN folded, channels-last).

    Args:
        model: a ferkit model (``label_names``, ``data_config``). device: ``auto``/``cpu``/``cuda[:N]``/``mps``.
        precision: ``fp32`` | ``bf16`` | ``fp16`` (autocast; fp16 needs a GPU). optimize: use ``for_inference``.
    """

    name = "torch"

    def __init__(self, model: nn.Module, *, device: str | torch.device = "auto", precision: str = "fp32",
                 optimize: bool = True):
        from ferkit.nn.optimize import for_inference

        self.device = resolve_device(device)
        self.precision = resolve_precision(precision, self.device)  # fp16 on the CPU: ConfigError
        self.precision_reason = "requested"
        self.label_names = tuple(model.label_names)
        self.data_config = dict(model.data_config)
        self.model_name = getattr(model, "model_name", type(model).__name__)
        self.untrained = bool(getattr(model, "untrained", False))
        model = for_inference(model) if optimize else model.eval()
        self.model = model.to(self.device)
        if isinstance(self.model, FerModel):  # e.g. MPA-FER computes its class text features once
            self.model.prepare_inference()

    def logits(self, batch: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) float32 -> (B, C) float32 logits on the CPU."""
        x = batch.to(self.device, non_blocking=self.device.type == "cuda")
        with torch.inference_mode(), autocast(self.device, self.precision):
            out = self.model(x)
        return out.float().cpu()


class _ExportedBackend:
    """What the backends of an exported file share: labels, preprocessing, model name and precision (``fp32`` or
    ``int8``, fixed by the file) from its JSON sidecar (``<path>.json``, written by ``ferkit export onnx``)."""

    name = "exported"

    def _read_sidecar(self, path: str | os.PathLike) -> None:
        from ferkit.export.sidecar import read_sidecar

        self.path = Path(path)
        meta = read_sidecar(self.path)
        self.label_names = tuple(meta["label_names"])
        self.data_config = dict(meta["data_config"])
        self.model_name = meta.get("model", self.path.stem)
        self.untrained = bool(meta.get("untrained", False))
        self.precision = str(meta.get("precision", "fp32"))
        self.precision_reason = "the precision of the ONNX file"
        if self.untrained:
            log.warning("%s was exported from an UNTRAINED model (random weights): its predictions are meaningless",
                        self.path)


class OnnxBackend(_ExportedBackend):
    """An ONNX file exported by ``ferkit export onnx`` (fp32, or int8 with ``--int8``), run with onnxruntime.

    Args:
        path: the ``.onnx`` file (its sidecar ``<path>.json`` must exist next to it).
        device: ``cpu``, ``cuda[:N]`` (CUDAExecutionProvider when installed) or ``auto``.
        threads: intra-op threads (default: ``torch.get_num_threads()``).
    """

    name = "onnx"

    def __init__(self, path: str | os.PathLike, *, device: str | torch.device = "auto", threads: int | None = None):
        ort = _import_onnxruntime()
        self._read_sidecar(path)
        self.device = resolve_device(device)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(threads or torch.get_num_threads())
        providers = _providers(ort, self.device, strict=str(device) != "auto")
        self.session = ort.InferenceSession(str(self.path), opts, providers=providers)
        self.input_name = self.session.get_inputs()[0].name

    def logits(self, batch: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) float32 -> (B, C) float32 logits."""
        out = self.session.run(None, {self.input_name: batch.detach().cpu().float().numpy()})[0]
        return torch.from_numpy(out).float()


class OpenVinoBackend(_ExportedBackend):
    """An ONNX file exported by ``ferkit export onnx`` (fp32, or int8 QDQ with ``--int8``), compiled by OpenVINO for
    the CPU: its graph compiler fuses the network into few kernels, which is 1.3-2.7x faster than PyTorch on the CPU
    for ferkit's models (docs/performance.md). The batch dimension stays dynamic (one compiled model for every batch
    size); the inference precision is pinned to the file's (OpenVINO would otherwise switch to bf16 on CPUs with AMX).

    Args:
        path: the ``.onnx`` file (its sidecar ``<path>.json`` must exist next to it).
        device: ``cpu`` or ``auto`` (OpenVINO runs ferkit's models on the CPU; a CUDA device is an error).
        threads: inference threads (default: ``torch.get_num_threads()``).
    """

    name = "openvino"

    def __init__(self, path: str | os.PathLike, *, device: str | torch.device = "auto", threads: int | None = None):
        ov = _import_openvino()
        self._read_sidecar(path)
        if str(device) != "auto" and resolve_device(device).type != "cpu":
            raise ConfigError(f"the OpenVINO backend runs on the CPU, not on {device}; use backend='torch' (or "
                              "'onnx' with onnxruntime-gpu) for a GPU")
        self.device = torch.device("cpu")
        self.threads = int(threads or torch.get_num_threads())
        core = ov.Core()
        net = core.read_model(str(self.path))
        shape = net.inputs[0].get_partial_shape()
        if not shape[0].is_dynamic:  # a file exported with a fixed batch: make it any batch
            net.reshape({net.inputs[0].get_any_name(): ov.PartialShape([-1] + [d for d in list(shape)[1:]])})
        self.compiled = core.compile_model(net, "CPU", openvino_config(self.threads))
        self._request = self.compiled.create_infer_request()
        self._lock = threading.Lock()  # one infer request: calls from several threads take turns

    def logits(self, batch: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) float32 -> (B, C) float32 logits."""
        x = batch.detach().cpu().float().contiguous().numpy()
        with self._lock:
            self._request.infer({0: x})
            out = self._request.get_output_tensor(0).data.copy()
        return torch.from_numpy(out).float()


def _providers(ort: Any, device: torch.device, strict: bool) -> list[Any]:
    """CUDA provider first for a CUDA device (an error when missing and asked for explicitly), else the CPU."""
    available = ort.get_available_providers()
    if device.type == "cuda":
        if "CUDAExecutionProvider" not in available:
            if not strict:
                log.info("onnxruntime has no CUDA provider; running the ONNX model on the CPU")
                return ["CPUExecutionProvider"]
            raise ConfigError("ONNX on CUDA needs onnxruntime-gpu (CUDAExecutionProvider); installed providers: "
                              f"{available}")
        return [("CUDAExecutionProvider", {"device_id": device.index or 0}), "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def _import_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError as e:
        raise ImportError("the ONNX backend needs onnxruntime: pip install 'ferkit[onnx]'") from e
    return onnxruntime


def openvino_config(threads: int) -> dict[str, Any]:
    """OpenVINO CPU compile options: fp32 inference precision (OpenVINO's default is bf16 on CPUs with AMX or
    AVX512-BF16, which would change the results), ``threads`` inference threads, latency mode (one stream)."""
    ov = _import_openvino()
    import openvino.properties as props
    import openvino.properties.hint as hints

    return dict([hints.inference_precision(ov.Type.f32), props.inference_num_threads(int(threads)),
                 hints.performance_mode(hints.PerformanceMode.LATENCY)])


def _import_openvino() -> Any:
    try:
        import openvino
    except ImportError as e:
        raise ImportError("the OpenVINO backend needs openvino: pip install 'ferkit[openvino]'") from e
    return openvino
