"""Convert MediaPipe's ``face_landmark.tflite`` into a :class:`~ferkit.nn.facemesh.FaceMesh` state dict.

The converter does not rely on tensor names: it walks the TFLite graph backwards from each output (landmarks: 1404
channels, face logit: 1 channel) and parses it into layers (conv + PReLU, BlazeBlock, plain conv), looking through
the ``DEQUANTIZE`` ops that expand the fp16 weights. The layer sequences are matched one to one with the FaceMesh
modules along the same path (trunk + head), with kinds, strides, padding modes, shortcuts and shapes checked. Strict:
every FaceMesh key is filled exactly once, every weight tensor and every operator of the file is used.

Layouts: TFLite conv kernels are OHWI -> PyTorch OIHW; depthwise kernels 1HWC -> (C, 1, H, W); PReLU alphas (1, 1, C)
-> (C,). fp16 weights are widened to float32 exactly as TFLite's DEQUANTIZE does.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ferkit.convert.tflite import TFLiteModel, TFLiteOperator, TFLiteTensor, has_tflite_identifier, read_tflite
from ferkit.errors import CheckpointError
from ferkit.nn.facemesh import BlazeBlock, ConvPReLU, FaceMesh

__all__ = ["FaceMeshConversionError", "convert_facemesh", "facemesh_state_dict", "is_facemesh_tflite"]

INPUT_SHAPE = (1, 192, 192, 3)
LANDMARK_OUTPUTS = 1404
_HEADS = {LANDMARK_OUTPUTS: "landmark_head", 1: "face_head"}  # output channels -> FaceMesh attribute


class FaceMeshConversionError(CheckpointError):
    """The TFLite graph does not map one to one onto the FaceMesh module."""


@dataclass
class _Layer:
    """One parsed layer of the TFLite graph: ``kind`` is ``"conv"``, ``"conv_prelu"`` or ``"block"``."""

    kind: str
    ops: dict[str, TFLiteOperator]  # role ("conv", "dw", "pw", "pool", "pad", "add", "act") -> operator
    weights: dict[str, int] = field(default_factory=dict)  # "<module>.<param>" suffix -> constant tensor index
    extra_channels: int = 0  # channels zero-padded onto the shortcut of a widening block


class _Graph:
    """A TFLite model with producer lookup and DEQUANTIZE-transparent constant resolution."""

    def __init__(self, model: TFLiteModel) -> None:
        self.model = model
        self._producers = model.producers()
        self.visited: set[int] = set()  # operator indices accounted for

    def name(self, tensor: int) -> str:
        return f"tensor {tensor} ({self.model.tensors[tensor].name!r})"

    def producer(self, tensor: int, *expected: str) -> TFLiteOperator:
        """The operator writing ``tensor``; it must be one of ``expected``."""
        op = self._producers.get(tensor)
        if op is None or op.op not in expected:
            found = "no operator (a graph input or constant)" if op is None else f"{op.op} (operator {op.index})"
            raise FaceMeshConversionError(f"{self.name(tensor)} is produced by {found}, expected {'/'.join(expected)}")
        return op

    def producer_op(self, tensor: int) -> str | None:
        """Name of the operator writing ``tensor`` (None for inputs and constants)."""
        op = self._producers.get(tensor)
        return None if op is None else op.op

    def constant(self, tensor: int) -> int:
        """Index of the constant weight tensor behind ``tensor`` (through at most one DEQUANTIZE)."""
        op = self._producers.get(tensor)
        if op is not None and op.op == "DEQUANTIZE":
            self.visited.add(op.index)
            tensor = op.inputs[0]
        t = self.model.tensors[tensor]
        if t.data is None or t.dtype not in ("float16", "float32"):
            raise FaceMeshConversionError(f"{self.name(tensor)} should be a float16/float32 constant, got {t.dtype} "
                                          f"{'without' if t.data is None else 'with'} data")
        return tensor


# --------------------------------------------------------------------------------------------------------------------
# Graph parsing


def _trace(graph: _Graph, output: int) -> list[_Layer]:
    """Layers from the graph input to ``output``, parsed backwards."""
    layers: list[_Layer] = []
    tensor = output
    while tensor not in graph.model.inputs:
        if len(layers) > len(graph.model.operators):
            raise FaceMeshConversionError(f"no path from {graph.name(output)} back to the graph input (cycle)")
        op = graph.producer(tensor, "CONV_2D", "PRELU")
        if op.op == "CONV_2D":
            layers.append(_conv_layer(graph, op))
            tensor = op.inputs[0]
            continue
        inner = graph.producer(op.inputs[0], "CONV_2D", "ADD")
        layer, tensor = (_conv_prelu_layer if inner.op == "CONV_2D" else _block_layer)(graph, inner, op)
        layers.append(layer)
    return layers[::-1]


def _conv_weights(graph: _Graph, conv: TFLiteOperator, prefix: str) -> dict[str, int]:
    graph.visited.add(conv.index)
    if len(conv.inputs) != 3 or conv.inputs[2] < 0:
        raise FaceMeshConversionError(f"{conv.op} operator {conv.index} has no bias input")
    return {f"{prefix}weight": graph.constant(conv.inputs[1]), f"{prefix}bias": graph.constant(conv.inputs[2])}


def _conv_layer(graph: _Graph, conv: TFLiteOperator) -> _Layer:
    return _Layer("conv", {"conv": conv}, _conv_weights(graph, conv, ""))


def _prelu_weights(graph: _Graph, prelu: TFLiteOperator) -> dict[str, int]:
    graph.visited.add(prelu.index)
    return {"act.weight": graph.constant(prelu.inputs[1])}


def _conv_prelu_layer(graph: _Graph, conv: TFLiteOperator, prelu: TFLiteOperator) -> tuple[_Layer, int]:
    weights = {**_conv_weights(graph, conv, "conv."), **_prelu_weights(graph, prelu)}
    return _Layer("conv_prelu", {"conv": conv, "act": prelu}, weights), conv.inputs[0]


def _block_layer(graph: _Graph, add: TFLiteOperator, prelu: TFLiteOperator) -> tuple[_Layer, int]:
    """Parse ``PRELU(ADD(CONV_2D(DEPTHWISE_CONV_2D(x)), shortcut(x)))``; returns the layer and ``x``."""
    graph.visited.add(add.index)
    main, other = _split_add(graph, add)
    pw = graph.producer(main, "CONV_2D")
    dw = graph.producer(pw.inputs[0], "DEPTHWISE_CONV_2D")
    x = dw.inputs[0]
    ops = {"dw": dw, "pw": pw, "add": add, "act": prelu}
    extra = 0
    if other != x:
        source = graph.producer(other, "MAX_POOL_2D", "PAD")
        if source.op == "PAD":
            ops["pad"], extra = source, _channel_padding(graph, source)
            graph.visited.add(source.index)
            source = graph.producer(source.inputs[0], "MAX_POOL_2D")
        if source.inputs[0] != x:
            raise FaceMeshConversionError(f"ADD operator {add.index}: shortcut pools {graph.name(source.inputs[0])}, "
                                          f"expected the block input {graph.name(x)}")
        ops["pool"] = source
        graph.visited.add(source.index)
    weights = {**_conv_weights(graph, dw, "dw."), **_conv_weights(graph, pw, "pw."), **_prelu_weights(graph, prelu)}
    return _Layer("block", ops, weights, extra), x


def _split_add(graph: _Graph, add: TFLiteOperator) -> tuple[int, int]:
    """(residual-branch input, shortcut input) of a block's ADD: the residual one is written by a 1x1 CONV_2D."""
    if len(add.inputs) != 2 or add.options.get("activation", "NONE") != "NONE":
        raise FaceMeshConversionError(f"ADD operator {add.index} must have 2 inputs and no fused activation")
    a, b = add.inputs
    return (a, b) if graph.producer_op(a) == "CONV_2D" else (b, a)


def _channel_padding(graph: _Graph, pad: TFLiteOperator) -> int:
    """Number of zero channels a PAD appends on the last (channel) axis; any other padding is an error."""
    paddings = graph.model.tensors[pad.inputs[1]].data
    if paddings is None or paddings.shape != (4, 2) or paddings[:3].any() or paddings[3, 0] != 0:
        raise FaceMeshConversionError(f"PAD operator {pad.index} must only append channels, got paddings "
                                      f"{None if paddings is None else paddings.tolist()}")
    return int(paddings[3, 1])


# --------------------------------------------------------------------------------------------------------------------
# Matching layers to modules


_LAYER_TYPES = (ConvPReLU, BlazeBlock, nn.Conv2d)


def _module_layers(module: nn.Module, prefix: str) -> list[tuple[str, nn.Module]]:
    """(state-dict prefix, module) of the ConvPReLU / BlazeBlock / Conv2d layers under ``module``, in order."""
    if isinstance(module, _LAYER_TYPES):
        return [(prefix, module)]
    out: list[tuple[str, nn.Module]] = []
    for name, child in module.named_children():
        out += _module_layers(child, f"{prefix}{name}.")
    return out


def _module_path(model: nn.Module, head: str) -> list[tuple[str, nn.Module]]:
    """Layers from the input to ``head``'s output: every child that is not a head (the trunk), then ``head``."""
    out: list[tuple[str, nn.Module]] = []
    for name, child in model.named_children():
        if name == head or name not in _HEADS.values():
            out += _module_layers(child, f"{name}.")
    return out


def _check_conv(op: TFLiteOperator, conv: nn.Conv2d, key: str, valid: bool) -> None:
    """The TFLite options of ``op`` must agree with the PyTorch ``conv`` at ``key``."""
    k = conv.kernel_size[0]
    want_padding = "VALID" if valid or k == 1 else "SAME"
    got = op.options
    problems = [
        f"stride {got.get('stride')} != {tuple(conv.stride)}" if got.get("stride") != tuple(conv.stride) else "",
        f"padding {got.get('padding')} != {want_padding}" if k > 1 and got.get("padding") != want_padding else "",
        f"fused activation {got.get('activation')}" if got.get("activation") != "NONE" else "",
        f"dilation {got.get('dilation')}" if got.get("dilation") != (1, 1) else "",
        f"depth multiplier {got['depth_multiplier']}" if got.get("depth_multiplier", 1) != 1 else "",
    ]
    problems = [p for p in problems if p]
    if problems:
        raise FaceMeshConversionError(f"{key}: {op.op} operator {op.index} does not match ({'; '.join(problems)})")


def _check_layer(layer: _Layer, prefix: str, module: nn.Module) -> None:
    """Kind, strides, padding modes and shortcut of a parsed layer against its FaceMesh module."""
    kind = "conv_prelu" if isinstance(module, ConvPReLU) else "block" if isinstance(module, BlazeBlock) else "conv"
    if layer.kind != kind:
        ops = ", ".join(f"{op.op}#{op.index}" for op in layer.ops.values())
        raise FaceMeshConversionError(f"{prefix.rstrip('.')} is a {type(module).__name__}, the TFLite graph has a "
                                      f"{layer.kind} layer here ({ops})")
    if isinstance(module, nn.Conv2d):
        _check_conv(layer.ops["conv"], module, prefix.rstrip("."), valid=module.padding == (0, 0))
    elif isinstance(module, ConvPReLU):
        _check_conv(layer.ops["conv"], module.conv, f"{prefix}conv", valid=False)
    else:
        _check_conv(layer.ops["dw"], module.dw, f"{prefix}dw", valid=False)
        _check_conv(layer.ops["pw"], module.pw, f"{prefix}pw", valid=True)
        _check_shortcut(layer, prefix, module)


def _check_shortcut(layer: _Layer, prefix: str, block: BlazeBlock) -> None:
    pool = layer.ops.get("pool")
    if (pool is not None) != (block.stride == 2):
        raise FaceMeshConversionError(f"{prefix.rstrip('.')}: stride {block.stride} but the TFLite shortcut "
                                      f"{'has a' if pool else 'has no'} max-pool")
    if pool is not None and (pool.options.get("filter"), pool.options.get("stride")) != ((2, 2), (2, 2)):
        raise FaceMeshConversionError(f"{prefix.rstrip('.')}: shortcut MAX_POOL_2D operator {pool.index} is not "
                                      f"2x2/2 ({pool.options})")
    if layer.extra_channels != block.extra_channels:
        raise FaceMeshConversionError(f"{prefix.rstrip('.')}: shortcut pads {layer.extra_channels} channels, the "
                                      f"module pads {block.extra_channels}")


# --------------------------------------------------------------------------------------------------------------------
# Weight transfer


def _to_torch(tensor: TFLiteTensor, param: str) -> torch.Tensor:
    """TFLite layout -> PyTorch layout for a ``param`` suffix such as ``dw.weight``."""
    data = np.asarray(tensor.data, dtype=np.float32)
    if param.endswith("act.weight"):
        if data.ndim and data.size != data.shape[-1]:
            raise FaceMeshConversionError(f"{tensor.name!r}: PReLU alpha {tensor.shape} is not per-channel")
        data = data.reshape(-1)
    elif param.endswith("weight") and data.ndim == 4:
        data = data.transpose(3, 0, 1, 2) if param.startswith("dw.") else data.transpose(0, 3, 1, 2)
    return torch.from_numpy(np.ascontiguousarray(data))


class _StrictStateDict:
    """Collects converted tensors; each key of the target state dict must be filled exactly once with its shape."""

    def __init__(self, model: nn.Module) -> None:
        self.expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        self.values: dict[str, torch.Tensor] = {}
        self.sources: dict[str, int] = {}

    def put(self, key: str, tensor: TFLiteTensor, value: torch.Tensor) -> None:
        if key not in self.expected:
            raise FaceMeshConversionError(f"TFLite tensor {tensor.name!r} maps to {key!r}, which the module lacks")
        if key in self.sources:
            if self.sources[key] == tensor.index:  # a trunk layer reached again from the other head
                return
            raise FaceMeshConversionError(f"{key!r} filled twice: from TFLite tensor {self.sources[key]} and "
                                          f"{tensor.index} ({tensor.name!r})")
        if tuple(value.shape) != self.expected[key]:
            raise FaceMeshConversionError(f"{key!r}: TFLite tensor {tensor.name!r} {tensor.shape} gives "
                                          f"{tuple(value.shape)}, the module expects {self.expected[key]}")
        self.values[key], self.sources[key] = value, tensor.index

    def finish(self) -> dict[str, torch.Tensor]:
        missing = [k for k in self.expected if k not in self.values]
        if missing:
            raise FaceMeshConversionError(f"{len(missing)} FaceMesh keys not filled from the TFLite file: "
                                          f"{', '.join(missing[:8])}{' ...' if len(missing) > 8 else ''}")
        return {k: self.values[k] for k in self.expected}


def _head_outputs(model: TFLiteModel) -> dict[str, int]:
    """Head attribute -> graph output tensor, identified by the output's channel count (1404 or 1)."""
    heads: dict[str, int] = {}
    for t in model.outputs:
        channels = model.tensors[t].shape[-1] if model.tensors[t].shape else -1
        head = _HEADS.get(channels)
        if head is None or head in heads:
            raise FaceMeshConversionError(f"graph output {model.tensors[t].name!r} {model.tensors[t].shape} is not "
                                          f"one landmark ({LANDMARK_OUTPUTS}) / face-logit (1) output")
        heads[head] = t
    if len(heads) != len(_HEADS):
        raise FaceMeshConversionError(f"the graph needs outputs with {sorted(_HEADS)} channels, has {len(heads)}")
    return heads


def _check_all_used(graph: _Graph, sink: _StrictStateDict) -> None:
    """Every float constant of the file became a parameter; every operator was part of a parsed layer."""
    used = set(sink.sources.values())
    unused = [t.name or str(t.index) for t in graph.model.tensors
              if t.data is not None and t.dtype in ("float16", "float32") and t.index not in used]
    if unused:
        raise FaceMeshConversionError(f"{len(unused)} TFLite weight tensors not used: {', '.join(unused[:8])}")
    stray = [f"{op.op}#{op.index}" for op in graph.model.operators if op.index not in graph.visited]
    if stray:
        raise FaceMeshConversionError(f"{len(stray)} TFLite operators are not part of the FaceMesh graph: "
                                      f"{', '.join(stray[:8])}")


def facemesh_state_dict(tfl: TFLiteModel, model: nn.Module | None = None) -> dict[str, torch.Tensor]:
    """Map a parsed FaceMesh ``.tflite`` onto ``model``'s state dict (default: a fresh :class:`FaceMesh`).

    Raises :class:`FaceMeshConversionError` naming the module key / TFLite tensor on any mismatch.
    """
    model = FaceMesh() if model is None else model
    graph, sink = _Graph(tfl), _StrictStateDict(model)
    for head, output in _head_outputs(tfl).items():
        layers, modules = _trace(graph, output), _module_path(model, head)
        if len(layers) != len(modules):
            raise FaceMeshConversionError(f"path to {head}: the module has {len(modules)} layers, the TFLite graph "
                                          f"{len(layers)} ({[layer.kind for layer in layers]})")
        for layer, (prefix, module) in zip(layers, modules):
            _check_layer(layer, prefix, module)
            for param, index in layer.weights.items():
                tensor = tfl.tensors[index]
                sink.put(prefix + param, tensor, _to_torch(tensor, param))
    _check_all_used(graph, sink)
    return sink.finish()


def convert_facemesh(path: str | Path, model: nn.Module | None = None) -> tuple[dict[str, torch.Tensor], dict]:
    """Read MediaPipe's ``face_landmark.tflite`` -> (FaceMesh state dict in float32, info dict).

    ``FaceMesh().load_state_dict(state_dict)`` then reproduces the TFLite outputs. ``model`` overrides the target
    module (its state-dict keys and shapes are what must be filled).
    """
    data = Path(path).read_bytes()
    tfl = read_tflite(data, source=str(path))
    try:
        state_dict = facemesh_state_dict(tfl, model)
    except FaceMeshConversionError as exc:
        raise FaceMeshConversionError(f"{path}: {exc}") from None
    info = {
        "format": "tflite",
        "model": "facemesh",
        "source_sha256": hashlib.sha256(data).hexdigest(),
        "licence": "Apache-2.0 (MediaPipe)",
        "num_params": sum(v.numel() for v in state_dict.values()),
        "input_size": FaceMesh.input_size,
    }
    return state_dict, info


def is_facemesh_tflite(path: str | Path) -> bool:
    """Cheap identification: a TFLite flatbuffer with a 1x192x192x3 input and a 1404-value output."""
    try:
        with open(path, "rb") as f:
            if not has_tflite_identifier(f.read(8)):
                return False
        tfl = read_tflite(path)
    except (OSError, CheckpointError):
        return False
    inputs = [tfl.tensors[i].shape for i in tfl.inputs]
    outputs = [int(np.prod(tfl.tensors[i].shape)) for i in tfl.outputs]
    return inputs == [INPUT_SHAPE] and LANDMARK_OUTPUTS in outputs
