"""int8 ONNX models: static quantization with onnxruntime (QDQ), calibrated on real face images.

``export_int8(model, "model_int8.onnx", calibrate="faces/")`` exports the fp32 graph (:func:`ferkit.export.onnx
.export_onnx`), feeds ``count`` calibration images through the model's own evaluation preprocessing (each image is one
pre-cropped face, as with ``detector="none"``) to collect activation ranges, and writes the quantized graph with a
sidecar that records ``precision: int8``, the recipe, the calibration count and a SHA-256 over the calibration files.

The recipe was chosen by measurement on the default model (``benchmarks/quantization.py``, docs/inference.md
"Precision"): QDQ format, per-channel int8 weights with ``reduce_range`` (7-bit: without VNNI onnxruntime's u8 x s8
kernels overflow their 16-bit sums and flip ~8 % of the predictions), uint8 activations, MinMax calibration, and, per
model (:data:`MODEL_RECIPES`), only the nodes whose int8 error keeps the predictions (quantizing every node of the
default model agrees on only ~98 % of FER+ Valid faces, max probability difference ~0.17).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ferkit.checkpoint import atomic_path, sha256_file
from ferkit.errors import ConfigError
from ferkit.export.onnx import DEFAULT_OPSET, _require, export_onnx
from ferkit.export.sidecar import read_sidecar, write_sidecar
from ferkit.image import is_image_file, load_pil

log = logging.getLogger(__name__)

#: calibration images used when no count is given
DEFAULT_CALIBRATION_COUNT = 256

#: the generic recipe: every quantizable node (Conv, MatMul, Gemm, Add, ...) with QDQ pairs; ``keep_fp32`` /
#: ``quantize_only``: regular expressions over ONNX node names (None: no restriction)
INT8_RECIPE: dict[str, Any] = {
    "name": "generic",
    "method": "onnxruntime.quantization.quantize_static",
    "format": "QDQ",
    "per_channel": True,
    "reduce_range": True,
    "activations": "uint8",
    "weights": "int8",
    "calibration": "MinMax",
    "keep_fp32": None,
    "quantize_only": None,
}

#: per model (``model_name``): the changes to :data:`INT8_RECIPE` measured to keep >= 99 % top-1 agreement and
#: max |dp| <= 0.02 with fp32 on FER+ Valid. POSTER++ open (the default model) quantizes the parts whose int8 error
#: stays small: the last level of the dlib image stream, the FaceMesh landmark stream after its stem, cross-fusion
#: blocks 1-2 (not their attention products), the tokenizers and the landmark projection; the first image levels,
#: the first cross-fusion block, the ViT fuser and the head stay fp32 (each alone costs 0.02-0.1 of probability).
MODEL_RECIPES: dict[str, dict[str, Any]] = {
    "poster_v2_open": {
        "name": "poster_v2_open",
        "quantize_only": r"^/(image_net/levels\.3/|landmark_net/(stage|landmark_head)|fusion\.[12]/|tokenize|"
                         r"landmark_proj)",
        "keep_fp32": r"attn/MatMul",
    },
}


def int8_recipe(model_name: str | None) -> dict[str, Any]:
    """The quantization recipe of a model: :data:`INT8_RECIPE` with the model's :data:`MODEL_RECIPES` changes."""
    return {**INT8_RECIPE, **MODEL_RECIPES.get(str(model_name), {})}


def calibration_files(folder: str | os.PathLike, count: int | None = DEFAULT_CALIBRATION_COUNT) -> list[Path]:
    """``count`` image files of ``folder`` (searched recursively, hidden files skipped), spread evenly over the
    sorted list so that every part of the folder is represented; all of them when ``count`` is None or larger.

    Raises:
        ConfigError: the folder does not exist or holds no image file; ``count`` < 1.
    """
    root = Path(folder)
    if not root.is_dir():
        raise ConfigError(f"calibration folder not found: {root} (give a folder of face images)")
    files = sorted(p for p in root.rglob("*") if p.is_file() and is_image_file(p)
                   and not any(part.startswith(".") for part in p.relative_to(root).parts))
    if not files:
        raise ConfigError(f"calibration folder {root} holds no image files")
    if count is not None:
        if int(count) < 1:
            raise ConfigError(f"calibration count must be >= 1, got {count}")
        if count < len(files):
            files = [files[i] for i in np.linspace(0, len(files) - 1, int(count)).round().astype(int)]
    return files


def calibration_hash(files: Sequence[str | os.PathLike]) -> str:
    """SHA-256 over the calibration files' contents, in order (names and folders do not matter)."""
    h = hashlib.sha256()
    for f in files:
        h.update(bytes.fromhex(sha256_file(f)))
    return h.hexdigest()


def calibration_batches(files: Sequence[str | os.PathLike], data_config: dict[str, Any], *,
                        batch_size: int = 8) -> Iterator[np.ndarray]:
    """(B, 3, S, S) float32 batches of ``files``, each image one pre-cropped face through the model's evaluation
    transform (``ferkit.models.transforms.build_eval_transform``), exactly what inference feeds the classifier."""
    from ferkit.models.transforms import build_eval_transform

    transform = build_eval_transform(dict(data_config))
    for i in range(0, len(files), batch_size):
        yield torch.stack([transform(load_pil(f)) for f in files[i:i + batch_size]]).numpy()


def quantize_onnx(src: str | os.PathLike, dst: str | os.PathLike, batches: Sequence[np.ndarray], *,
                  recipe: dict[str, Any] | None = None) -> dict[str, Any]:
    """Quantize the fp32 ONNX file ``src`` to ``dst`` with onnxruntime's static quantizer, calibrated on
    ``batches`` (normalised model inputs), following ``recipe`` (default: :data:`INT8_RECIPE`). Returns the recipe
    used plus the number of nodes kept in fp32 / selected for quantization."""
    _require("onnxruntime")
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    recipe = dict(INT8_RECIPE if recipe is None else recipe)
    feeds = iter(list(batches))

    class _Reader(CalibrationDataReader):
        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(feeds, None)
            return None if batch is None else {input_name: batch}

    with tempfile.TemporaryDirectory(prefix="ferkit-int8-") as tmp:
        pre = Path(tmp) / "pre.onnx"
        symbolic = True
        try:
            quant_pre_process(str(src), str(pre), skip_symbolic_shape=False)  # shapes + graph fusions first
        except Exception as e:  # noqa: BLE001 - onnxruntime's symbolic shape inference gives up on some graphs
            log.info("symbolic shape inference failed on %s (%s: %s); pre-processing with ONNX shape inference only",
                     src, type(e).__name__, e)
            symbolic = False
            quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        graph = onnx.load(str(pre)).graph
        input_name = graph.input[0].name
        keep = [n.name for n in graph.node if re.search(recipe["keep_fp32"], n.name)] if recipe["keep_fp32"] else []
        only = recipe.get("quantize_only")
        only = [n.name for n in graph.node if re.search(only, n.name) and n.name not in keep] if only else None
        if only is not None and not only:  # onnxruntime would read an empty list as "quantize everything"
            raise ConfigError(f"int8 recipe {recipe.get('name')!r}: quantize_only matches no node of {src}")
        with atomic_path(Path(dst), suffix=".onnx") as out:
            quantize_static(str(pre), str(out), _Reader(),
                            quant_format=QuantFormat.QDQ if recipe["format"] == "QDQ" else QuantFormat.QOperator,
                            per_channel=recipe["per_channel"], reduce_range=recipe["reduce_range"],
                            activation_type=QuantType.QUInt8 if recipe["activations"] == "uint8" else QuantType.QInt8,
                            weight_type=QuantType.QInt8 if recipe["weights"] == "int8" else QuantType.QUInt8,
                            calibrate_method=getattr(CalibrationMethod, recipe["calibration"]),
                            nodes_to_exclude=keep, nodes_to_quantize=only)
    import onnxruntime

    return {**recipe, "nodes_kept_fp32": len(keep), "nodes_quantized": None if only is None else len(only),
            "symbolic_shape_inference": symbolic, "onnxruntime": onnxruntime.__version__}


def export_int8(model: nn.Module, path: str | os.PathLike, *, calibrate: str | os.PathLike,
                count: int | None = DEFAULT_CALIBRATION_COUNT, opset: int = DEFAULT_OPSET,
                check: bool = True) -> dict[str, Any]:
    """Export ``model`` as an int8 ONNX file ``path`` (+ ``path.json``), calibrated on face images of ``calibrate``.

    Args:
        model: a ferkit model. calibrate: folder of face images (pre-cropped faces; read through the model's own
            preprocessing). count: calibration images, spread over the folder (None: all).
        check: the fp32 export's parity check against PyTorch (:func:`ferkit.export.onnx.export_onnx`).

    Returns:
        A report: ``path``, ``sidecar``, ``size_bytes``, ``sha256``, ``precision``, ``calibration`` (count, sha256),
        ``fp32_max_abs_diff`` (the fp32 export's parity).
    """
    path = Path(path)
    files = calibration_files(calibrate, count)
    with tempfile.TemporaryDirectory(prefix="ferkit-int8-") as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        base = export_onnx(model, fp32, opset=opset, check=check)
        meta = {k: v for k, v in read_sidecar(fp32).items() if k not in ("format", "parity_max_abs_diff")}
        log.info("calibrating int8 on %d images of %s", len(files), calibrate)
        recipe = quantize_onnx(fp32, path, list(calibration_batches(files, meta["data_config"])),
                               recipe=int8_recipe(meta.get("model")))
    calibration = {"count": len(files), "sha256": calibration_hash(files), "folder": Path(calibrate).name}
    meta.update(precision="int8", quantization=recipe, calibration=calibration, sha256=sha256_file(path),
                fp32_sha256=base["sha256"], fp32_parity_max_abs_diff=base["max_abs_diff"])
    sidecar = write_sidecar(path, meta)
    return {"path": str(path), "sidecar": str(sidecar), "size_bytes": path.stat().st_size, "sha256": meta["sha256"],
            "precision": "int8", "calibration": calibration, "fp32_max_abs_diff": base["max_abs_diff"]}


def file_precision(meta: dict[str, Any]) -> str:
    """The precision an export's sidecar records (files from before ``precision`` was recorded are fp32)."""
    return str(meta.get("precision", "fp32"))
