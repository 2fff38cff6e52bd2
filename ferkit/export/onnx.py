"""ONNX export of ferkit models: images (B, 3, S, S) normalised -> logits (B, C), dynamic batch, plus a JSON sidecar.

POSTER++ exports as it is. MPA-FER exports its image path with the class text features folded in as a constant
(they depend only on the learned context, so inference never runs the text encoder). The TorchScript-based exporter
(``torch.onnx.export(..., dynamo=False)``) is used: it handles both models on torch 2.14 without extra packages.
After writing, the file is checked with ``onnx.checker`` and, unless disabled, compared with PyTorch on random inputs.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ferkit.checkpoint import atomic_path, sha256_file
from ferkit.errors import FerkitError
from ferkit.export.sidecar import write_sidecar
from ferkit.models.base import FerModel

log = logging.getLogger(__name__)

DEFAULT_OPSET = 17


class ExportError(FerkitError, RuntimeError):
    """The exported model does not reproduce the PyTorch model."""


def exportable(model: nn.Module) -> nn.Module:
    """The module to trace (eval, CPU, fp32): ``model.exportable()`` for ferkit models (MPA-FER folds its text
    features in), the module itself otherwise."""
    model = model.eval().float().cpu()
    hook = model.exportable if isinstance(model, FerModel) else None
    return hook().eval() if hook else model


def sidecar_meta(model: nn.Module, opset: int) -> dict[str, Any]:
    """Everything a runtime needs besides the graph: names, labels, preprocessing."""
    return {"model": getattr(model, "model_name", type(model).__name__), "family": model.data_config.get("family"),
            "label_names": list(model.label_names), "num_classes": len(model.label_names),
            "data_config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in model.data_config.items()},
            "untrained": bool(getattr(model, "untrained", False)),
            "input": "images", "output": "logits", "input_layout": "NCHW float32, normalised RGB",
            "opset": opset, "exporter": f"torch.onnx (TorchScript) {torch.__version__}", "precision": "fp32"}


def export_onnx(model: nn.Module, path: str | os.PathLike, *, opset: int = DEFAULT_OPSET, check: bool = True,
                atol: float = 1e-4, seed: int = 0) -> dict[str, Any]:
    """Export ``model`` to ``path`` (atomically) and write ``path.json``.

    Args:
        model: a ferkit model (``label_names``, ``data_config``). opset: ONNX opset.
        check: run the parity check (:func:`parity`) and raise :class:`ExportError` when the largest logit
            difference exceeds ``atol``.

    Returns:
        A report: ``path``, ``sidecar``, ``size_bytes``, ``sha256``, ``max_abs_diff`` (None without check).
    """
    _require("onnx")
    import onnx

    path = Path(path)
    net = exportable(model)
    size = _input_size(model)
    dummy = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(seed))
    with atomic_path(path, suffix=".onnx") as tmp:  # the file gets the umask's permissions, like other outputs
        _trace_export(net, dummy, str(tmp), opset)
        onnx.checker.check_model(str(tmp))
    meta = {**sidecar_meta(model, opset), "sha256": sha256_file(path)}
    report = {"path": str(path), "size_bytes": path.stat().st_size, "sha256": meta["sha256"], "max_abs_diff": None}
    if check:
        report["max_abs_diff"] = parity(net, path, size=size, seed=seed + 1)
        meta["parity_max_abs_diff"] = report["max_abs_diff"]
        if report["max_abs_diff"] > atol:
            raise ExportError(f"ONNX logits differ from PyTorch by {report['max_abs_diff']:.3g} (> {atol}); "
                              f"the export at {path} is not trustworthy")
    report["sidecar"] = str(write_sidecar(path, meta))
    return report


def _trace_export(net: nn.Module, dummy: torch.Tensor, out: str, opset: int) -> None:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)
        torch.onnx.export(net, (dummy,), out, dynamo=False, opset_version=opset, input_names=["images"],
                          output_names=["logits"], dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}})


def parity(net: nn.Module, path: str | os.PathLike, *, size: int, batch: int = 3, seed: int = 1) -> float:
    """Largest absolute logit difference between ``net`` (PyTorch, fp32) and the ONNX file on a random batch whose
    size differs from the export batch (so the dynamic batch axis is exercised too)."""
    _require("onnxruntime")
    import onnxruntime as ort

    x = torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(seed))
    with torch.inference_mode():
        ref = net.eval()(x).float().numpy()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = torch.get_num_threads()
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    out = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    if out.shape != ref.shape:
        raise ExportError(f"ONNX output shape {out.shape} != PyTorch {ref.shape}")
    return float(np.abs(out - ref).max())


def _input_size(model: nn.Module) -> int:
    size = model.data_config["input_size"]
    return int(size[-1] if isinstance(size, (tuple, list)) else size)


def _require(module: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise ImportError(f"ONNX export needs {module}: pip install 'ferkit[onnx]'")
