"""Import the author's OpenVINO IR of the 68-landmark MobileFaceNet (cunjian/pytorch_face_landmark, the frozen
landmark stream of POSTER / POSTER++) into :class:`ferkit.nn.mobilefacenet.MobileFaceNet`.

The IR (v10, FP16) has every BatchNorm folded away: each ``ConvBlock`` is ``Convolution | GroupConvolution -> Add(bias)
-> PReLU``, each ``LinearBlock`` the same without PReLU, residual units an ``Add`` of two tensors, and the GDC head
``GroupConvolution 7x7 -> Add -> Reshape -> MatMul -> Unsqueeze -> Multiply -> Add -> Squeeze`` (the BatchNorm1d kept as
a per-feature scale and shift). The folded parameters go into ferkit's unfolded modules exactly: the folded conv weight
into ``conv.weight`` and the per-channel ``(scale, shift)`` that follows it into the BatchNorm as
``weight=scale, bias=shift, running_mean=0, running_var=1-eps``, so that the BatchNorm computes ``scale * x + shift``.

Input: the graph holds no preprocessing (no mean/scale layer, no channel reversal; the converter options mean_values,
scale_values and reverse_input_channels were unset), so it takes what the author's demos feed it: a square face crop
resized to 112x112, ``pixel / 255``, no mean/std, straight from OpenCV (BGR). The network is nearly colour-blind (RGB
or BGR moves landmarks by < 0.1 px on a colour face). Output: 68 ``(x, y)`` pairs in [0, 1] of the crop.

The repository the IR comes from states no licence: ferkit reads a file the user supplies and never ships it, nor
weights converted from it.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ferkit.checkpoint import check_state_dict, sha256_file
from ferkit.convert.openvino_ir import IRError, IRModel, Layer, read_ir, resolve_ir_paths
from ferkit.nn.mobilefacenet import GDC, ConvBlock, DepthWise, LinearBlock, MobileFaceNet

LICENCE = "none stated (cunjian/pytorch_face_landmark): import-only, never redistributed"
INPUT_SIZE = 112
NUM_OUTPUTS = 136
NUM_CONVS = 49  # Convolution + GroupConvolution layers of MobileFaceNet([112, 112], 136)
TAPS = {"conv_3": "f3", "conv_4": "f4", "conv_6_sep": "f5"}  # module whose output is each tap of forward()
EXPECTED_INPUT = ("N x 3 x 112 x 112 float32 face crop, values in [0, 1] (pixel / 255), no mean/std; the author's "
                  "demos feed OpenCV (BGR) crops")

CONV_OPS = frozenset({"Convolution", "GroupConvolution"})
AFFINE_OPS = frozenset({"Add", "Subtract", "Multiply", "Divide"})
SHAPE_OPS = frozenset({"Reshape", "Squeeze", "Unsqueeze"})
LINEAR_OPS = frozenset({"MatMul", "FullyConnected"})
Tensor = tuple[int, int]  # (layer id, output port id)


# ---- IR side: the graph cut into units ----------------------------------------------------------------------------

@dataclass
class _ConvUnit:
    """Conv (+ per-channel affine, i.e. the folded BN) (+ PReLU). ``weight``: (O, I / groups, kh, kw)."""

    conv: Layer
    weight: np.ndarray
    groups: int
    scale: np.ndarray  # (O,)
    shift: np.ndarray  # (O,)
    slope: np.ndarray | None  # (O,) PReLU slopes, None without PReLU
    src: Tensor
    dst: Tensor

    def describe(self) -> str:
        o, i, kh, kw = self.weight.shape
        act = " + PReLU" if self.slope is not None else ""
        return (f"{self.conv.describe()} {i * self.groups}->{o} {kh}x{kw} stride {self.conv.data.get('strides')} "
                f"groups {self.groups}{act}")


@dataclass
class _AddUnit:
    """Residual ``Add`` of two computed tensors."""

    layer: Layer
    srcs: tuple[Tensor, Tensor]
    dst: Tensor

    def describe(self) -> str:
        return f"residual {self.layer.describe()}"


@dataclass
class _HeadUnit:
    """Flatten -> MatMul / FullyConnected (+ per-feature affine = the folded BatchNorm1d). ``weight``: (out, in)."""

    linear: Layer
    weight: np.ndarray
    scale: np.ndarray  # (out,)
    shift: np.ndarray  # (out,)
    src: Tensor
    dst: Tensor

    def describe(self) -> str:
        return f"head {self.linear.describe()} {self.weight.shape[1]}->{self.weight.shape[0]}"


_Unit = _ConvUnit | _AddUnit | _HeadUnit


@dataclass
class _Graph:
    param: Layer
    result: Layer
    start: Tensor  # tensor entering the network proper (after any in-graph preprocessing)
    out: Tensor  # tensor the Result reads
    pre_scale: np.ndarray  # (3,) in-graph preprocessing x' = pre_scale * x + pre_shift
    pre_shift: np.ndarray
    pre_steps: list[dict]
    converts: list[dict]
    units: list[_Unit]
    used: dict[int, str]  # Const layer id -> role ("weight" / "structure")


@dataclass
class _Walker:
    """Cuts the IR into units, consuming every non-Const layer once and recording which Consts were used."""

    ir: IRModel
    used: dict[int, str] = field(default_factory=dict)
    done: set[int] = field(default_factory=set)
    converts: list[dict] = field(default_factory=list)  # precision Converts on the data path

    def fail(self, msg: str) -> IRError:
        return IRError(f"{self.ir.xml_path}: {msg}")

    # -- constants

    def const_layer(self, layer: Layer, index: int) -> Layer | None:
        return _const_behind(self.ir, layer, index)[0]

    def take(self, layer: Layer, index: int, role: str = "weight") -> np.ndarray:
        """Data of the constant feeding input ``index`` of ``layer`` as float64; marks it (and Converts) used."""
        const, converts = _const_behind(self.ir, layer, index)
        if const is None:
            raise self.fail(f"input {index} of {layer.describe()} is not a constant")
        self.done.update(c.id for c in converts)
        self.used[const.id] = role
        return self.ir.const(const.id).astype(np.float64)

    def per_channel(self, value: np.ndarray, layer: Layer, channels: int, rank: int) -> np.ndarray:
        """A constant broadcast against a (N, C, ...) tensor of ``rank`` dims -> (C,), or raise if not per-channel."""
        shape = (1,) * (rank - value.ndim) + value.shape
        if len(shape) != rank or shape[1] not in (1, channels) or any(d != 1 for i, d in enumerate(shape) if i != 1):
            raise self.fail(f"{layer.describe()}: constant of shape {list(value.shape)} is not per-channel for a "
                            f"tensor with {channels} channels")
        return np.broadcast_to(value.reshape(-1), (channels,)).copy()

    # -- units

    def output(self, layer: Layer) -> Tensor:
        return layer.id, layer.outputs[0].id

    def single_consumer(self, tensor: Tensor) -> tuple[Layer, int] | None:
        cons = self.ir.consumers(*tensor)
        return cons[0] if len(cons) == 1 else None

    def affine_chain(self, tensor: Tensor, channels: int, *, shape_ops: bool = False,
                     steps: list[dict] | None = None) -> tuple[np.ndarray, np.ndarray, Tensor]:
        """Absorb the run of ``Add/Subtract/Multiply/Divide`` by per-channel constants after ``tensor`` (and, with
        ``shape_ops``, Squeeze/Unsqueeze/Reshape that keep the (N, C) layout) into ``y = scale * x + shift``.
        Precision ``Convert`` nodes on the way are passed through and recorded."""
        scale, shift = np.ones(channels), np.zeros(channels)
        while (nxt := self.single_consumer(tensor)) is not None:
            layer, port = nxt
            if layer.type in AFFINE_OPS and len(layer.inputs) == 2:
                k = 1 - next(i for i, p in enumerate(layer.inputs) if p.id == port)
                if self.const_layer(layer, k) is None:
                    break
                value = self.per_channel(self.take(layer, k), layer, channels, len(layer.outputs[0].shape))
                scale, shift = self.compose(layer, k, scale, shift, value)
                if steps is not None:
                    steps.append({"op": layer.type, "layer": layer.name, "value": value.tolist()})
            elif shape_ops and layer.type in SHAPE_OPS:
                self.check_keeps_features(layer, channels)
            elif layer.type == "Convert":
                self.converts.append({"layer": layer.name, "to": layer.data.get("destination_type")})
            else:
                break
            self.done.add(layer.id)
            tensor = self.output(layer)
        return scale, shift, tensor

    def compose(self, layer: Layer, k: int, scale: np.ndarray, shift: np.ndarray,
                c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(scale, shift) of ``op(scale * x + shift, c)``; ``k`` is the input index of the constant."""
        op = layer.type
        if op == "Add":
            return scale, shift + c
        if op == "Multiply":
            return scale * c, shift * c
        if op == "Subtract":
            return (scale, shift - c) if k == 1 else (-scale, c - shift)
        if k == 1 and np.all(c != 0):  # Divide x / c
            return scale / c, shift / c
        raise self.fail(f"{layer.describe()} divides by a tensor or by zero; not an affine map")

    def check_keeps_features(self, layer: Layer, channels: int) -> None:
        """A shape op in the head may only add or remove unit dims around the (N, C) features."""
        for shape in (layer.inputs[0].shape, layer.outputs[0].shape):
            if len(shape) < 2 or shape[1] != channels or any(d != 1 for d in shape[2:]):
                raise self.fail(f"{layer.describe()} reshapes the {channels} head features ({list(shape)})")
        for i in range(1, len(layer.inputs)):
            self.take(layer, i, role="structure")

    def conv_unit(self, conv: Layer) -> _ConvUnit:
        if self.const_layer(conv, 0) is not None:
            raise self.fail(f"{conv.describe()} convolves a constant")
        src_layer, src_port = self.ir.source(conv.id, conv.inputs[0].id)
        w = self.take(conv, 1)
        if conv.type == "GroupConvolution":
            if w.ndim != 5:
                raise self.fail(f"{conv.describe()} has weights of shape {list(w.shape)}, "
                                f"expected (G, O/G, I/G, kh, kw)")
            groups = w.shape[0]
            w = w.reshape(groups * w.shape[1], *w.shape[2:])
        else:
            if w.ndim != 4:
                raise self.fail(f"{conv.describe()} has weights of shape {list(w.shape)}, expected (O, I, kh, kw)")
            groups = 1
        if conv.data.get("auto_pad", "explicit").lower() not in ("explicit", "notset"):
            raise self.fail(f"{conv.describe()} uses auto_pad={conv.data['auto_pad']}; "
                            f"only explicit pads are supported")
        self.done.add(conv.id)
        out_c = w.shape[0]
        scale, shift, tensor = self.affine_chain(self.output(conv), out_c)
        slope = None
        nxt = self.single_consumer(tensor)
        if nxt is not None and nxt[0].type == "PReLU":
            prelu = nxt[0]
            slope = self.take(prelu, 1).reshape(-1)
            if slope.size not in (1, out_c):
                raise self.fail(f"{prelu.describe()} has {slope.size} slopes for {out_c} channels")
            slope = np.broadcast_to(slope, (out_c,)).copy()
            self.done.add(prelu.id)
            tensor = self.output(prelu)
        return _ConvUnit(conv, w, groups, scale, shift, slope, (src_layer.id, src_port), tensor)

    def add_unit(self, layer: Layer) -> _AddUnit:
        srcs = [self.ir.source(layer.id, p.id) for p in layer.inputs]
        self.done.add(layer.id)
        return _AddUnit(layer, tuple((s.id, port) for s, port in srcs), self.output(layer))

    def head_unit(self, first: Layer) -> _HeadUnit:
        src_layer, src_port = self.ir.source(first.id, first.inputs[0].id)
        layer = first
        if layer.type in SHAPE_OPS:  # flatten (N, C, 1, 1) -> (N, C)
            shp_in, shp_out = layer.inputs[0].shape, layer.outputs[0].shape
            if len(shp_out) != 2 or int(np.prod(shp_in[1:])) != shp_out[1]:
                raise self.fail(f"{layer.describe()} maps {list(shp_in)} to {list(shp_out)}; expected a flatten")
            for i in range(1, len(layer.inputs)):
                self.take(layer, i, role="structure")
            self.done.add(layer.id)
            nxt = self.single_consumer(self.output(layer))
            if nxt is None or nxt[0].type not in LINEAR_OPS:
                raise self.fail(f"{layer.describe()} is not followed by a single MatMul / FullyConnected")
            layer = nxt[0]
        weight, bias = self.linear_weight(layer)
        self.done.add(layer.id)
        scale, shift, tensor = self.affine_chain(self.output(layer), weight.shape[0], shape_ops=True)
        return _HeadUnit(layer, weight, scale, shift + scale * bias, (src_layer.id, src_port), tensor)

    def linear_weight(self, layer: Layer) -> tuple[np.ndarray, np.ndarray]:
        """(out, in) weight and (out,) bias of a MatMul (activations on input 0) or FullyConnected."""
        if layer.type not in LINEAR_OPS or self.const_layer(layer, 0) is not None:
            raise self.fail(f"{layer.describe()}: expected MatMul / FullyConnected of activations by a constant")
        w = self.take(layer, 1)
        if w.ndim != 2:
            raise self.fail(f"{layer.describe()} has a weight of shape {list(w.shape)}, expected 2-D")
        if layer.type == "MatMul":
            if layer.data.get("transpose_a", "false").lower() == "true":
                raise self.fail(f"{layer.describe()} transposes its activations (transpose_a)")
            if layer.data.get("transpose_b", "false").lower() != "true":
                w = w.T
            return w, np.zeros(w.shape[0])
        bias = self.take(layer, 2).reshape(-1) if len(layer.inputs) > 2 else np.zeros(w.shape[0])
        if bias.size != w.shape[0]:
            raise self.fail(f"{layer.describe()} has {bias.size} biases for {w.shape[0]} outputs")
        return w, bias


def _const_behind(ir: IRModel, layer: Layer, index: int) -> tuple[Layer | None, list[Layer]]:
    """The Const feeding input ``index`` of ``layer`` through any ``Convert`` (weight decompression) nodes, and
    those nodes; ``(None, ...)`` when the input is computed."""
    src, _ = ir.source(layer.id, layer.inputs[index].id)
    converts = []
    while src.type == "Convert":
        converts.append(src)
        src, _ = ir.source(src.id, src.inputs[0].id)
    return (src if src.type == "Const" else None), converts


def _only(ir: IRModel, type_: str) -> Layer:
    layers = ir.by_type(type_)
    if len(layers) != 1:
        raise IRError(f"{ir.xml_path}: expected one {type_} layer, found {len(layers)}")
    return layers[0]


def _walk(ir: IRModel) -> _Graph:
    """Cut the whole IR into units in topological order; unknown layer types raise."""
    w = _Walker(ir)
    param, result = _only(ir, "Parameter"), _only(ir, "Result")
    shape = param.output_shape()
    if len(shape) != 4 or shape[1:] != (3, INPUT_SIZE, INPUT_SIZE):
        raise w.fail(f"input {param.describe()} has shape {list(shape)}, expected (N, 3, {INPUT_SIZE}, {INPUT_SIZE})")
    w.done.update({param.id, result.id})
    steps: list[dict] = []
    pre_scale, pre_shift, start = w.affine_chain(w.output(param), 3, steps=steps)
    units: list[_Unit] = []
    for layer in ir.topological_order():
        if layer.id in w.done or layer.type == "Const":
            continue
        if layer.type in CONV_OPS:
            units.append(w.conv_unit(layer))
        elif layer.type == "Add" and all(w.const_layer(layer, i) is None for i in range(len(layer.inputs))):
            units.append(w.add_unit(layer))
        elif layer.type in SHAPE_OPS | LINEAR_OPS:
            units.append(w.head_unit(layer))
        else:
            raise w.fail(f"{layer.describe()} is not part of the MobileFaceNet pattern (Conv/GroupConv -> Add -> "
                         f"PReLU, residual Add, Reshape -> MatMul -> per-feature scale/shift)")
    out_layer, out_port = ir.source(result.id, result.inputs[0].id)
    return _Graph(param, result, start, (out_layer.id, out_port), pre_scale, pre_shift, steps, w.converts, units,
                  w.used)


# ---- ferkit side: the module plan ---------------------------------------------------------------------------------

def _plan(module: nn.Module, prefix: str = "") -> Iterator[tuple]:
    """Steps of ``MobileFaceNet.forward`` + ``landmarks`` in execution order:
    ``("conv", prefix, block)``, ``("block", prefix)`` / ``("residual", prefix)`` around a residual DepthWise,
    ``("tap", name)``, ``("head", prefix, gdc)``."""
    if isinstance(module, ConvBlock | LinearBlock):
        yield "conv", prefix, module
    elif isinstance(module, GDC):
        yield "conv", f"{prefix}.conv_6_dw", module.conv_6_dw
        yield "head", prefix, module
    elif isinstance(module, DepthWise) and module.residual:
        yield "block", prefix
        for name, child in module.named_children():
            yield from _plan(child, f"{prefix}.{name}")
        yield "residual", prefix
    else:
        children = list(module.named_children())
        if not children and any(True for _ in module.parameters(recurse=False)):
            raise IRError(f"ferkit's MobileFaceNet has a module the IR converter does not know: {prefix} "
                          f"({type(module).__name__})")
        for name, child in children:
            yield from _plan(child, f"{prefix}.{name}" if prefix else name)
    if prefix in TAPS:
        yield "tap", TAPS[prefix]


# ---- matching -----------------------------------------------------------------------------------------------------

@dataclass
class _Matcher:
    ir: IRModel
    units: list[_Unit]
    current: Tensor
    sd: dict[str, torch.Tensor] = field(default_factory=dict)
    pos: int = 0
    block_inputs: dict[str, Tensor] = field(default_factory=dict)
    taps: dict[str, Tensor] = field(default_factory=dict)

    def fail(self, msg: str) -> IRError:
        return IRError(f"{self.ir.xml_path}: {msg}")

    def put(self, key: str, value: np.ndarray | torch.Tensor) -> None:
        if key in self.sd:
            raise self.fail(f"state-dict key {key} would be filled twice")
        self.sd[key] = value if isinstance(value, torch.Tensor) else torch.from_numpy(np.asarray(value, np.float32))

    def tensor_name(self, t: Tensor) -> str:
        return self.ir.layers[t[0]].describe()

    def next_unit(self, what: str) -> _Unit:
        if self.pos >= len(self.units):
            raise self.fail(f"the IR ends before ferkit's {what}")
        self.pos += 1
        return self.units[self.pos - 1]

    def expect(self, unit: _Unit, cls: type, what: str) -> None:
        if not isinstance(unit, cls):
            raise self.fail(f"ferkit's {what} has no counterpart: the IR has {unit.describe()} there "
                            f"(IR unit {self.pos} of {len(self.units)})")

    def check_input(self, src: Tensor, what: str) -> None:
        if src != self.current:
            raise self.fail(f"wiring differs at {what}: the IR feeds it from {self.tensor_name(src)}, ferkit from "
                            f"{self.tensor_name(self.current)}")

    def conv(self, prefix: str, block: ConvBlock | LinearBlock) -> None:
        m = block.conv
        what = (f"{prefix} ({type(block).__name__} {m.in_channels}->{m.out_channels} {m.kernel_size[0]}x"
                f"{m.kernel_size[1]} stride {m.stride[0]} groups {m.groups})")
        unit = self.next_unit(what)
        self.expect(unit, _ConvUnit, what)
        self.check_input(unit.src, what)
        c = unit.conv
        got = {"weight shape": tuple(unit.weight.shape), "groups": unit.groups, "strides": c.ints("strides", ()),
               "pads_begin": c.ints("pads_begin", ()), "pads_end": c.ints("pads_end", ()),
               "dilations": c.ints("dilations", (1, 1)), "PReLU": unit.slope is not None}
        want = {"weight shape": tuple(m.weight.shape), "groups": m.groups, "strides": m.stride, "pads_begin": m.padding,
                "pads_end": m.padding, "dilations": m.dilation, "PReLU": isinstance(block, ConvBlock)}
        bad = [f"{k} {got[k]} vs {want[k]}" for k in want if got[k] != want[k]]
        if bad:
            raise self.fail(f"{unit.describe()} does not fit ferkit's {what}: " + "; ".join(bad))
        self.put(f"{prefix}.conv.weight", unit.weight)
        self.put_bn(f"{prefix}.bn", block.bn, unit.scale, unit.shift)
        if unit.slope is not None:
            self.put(f"{prefix}.prelu.weight", unit.slope)
        self.current = unit.dst

    def put_bn(self, prefix: str, bn: nn.modules.batchnorm._BatchNorm, scale: np.ndarray, shift: np.ndarray) -> None:
        """BatchNorm that computes ``scale * x + shift`` exactly: mean 0, var 1 - eps."""
        if not 0 < bn.eps < 1:
            raise self.fail(f"{prefix} has eps={bn.eps}; cannot encode a folded BatchNorm")
        self.put(f"{prefix}.weight", scale)
        self.put(f"{prefix}.bias", shift)
        self.put(f"{prefix}.running_mean", np.zeros_like(scale))
        self.put(f"{prefix}.running_var", np.full_like(scale, 1.0 - bn.eps))
        self.put(f"{prefix}.num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def residual(self, prefix: str) -> None:
        what = f"the residual add of {prefix}"
        unit = self.next_unit(what)
        self.expect(unit, _AddUnit, what)
        block_in = self.block_inputs.pop(prefix)
        if sorted(unit.srcs) != sorted((self.current, block_in)):
            raise self.fail(f"wiring differs at {what}: the IR adds {', '.join(map(self.tensor_name, unit.srcs))}; "
                            f"ferkit adds {self.tensor_name(self.current)} and {self.tensor_name(block_in)}")
        self.current = unit.dst

    def head(self, prefix: str, gdc: GDC) -> None:
        what = f"{prefix}.linear + {prefix}.bn (Linear {gdc.linear.in_features}->{gdc.linear.out_features}, BN1d)"
        unit = self.next_unit(what)
        self.expect(unit, _HeadUnit, what)
        self.check_input(unit.src, what)
        if tuple(unit.weight.shape) != tuple(gdc.linear.weight.shape):
            raise self.fail(f"{unit.describe()} does not fit ferkit's {what}: weight shape "
                            f"{tuple(unit.weight.shape)} vs {tuple(gdc.linear.weight.shape)}")
        self.put(f"{prefix}.linear.weight", unit.weight)
        self.put_bn(f"{prefix}.bn", gdc.bn, unit.scale, unit.shift)
        self.current = unit.dst

    def run(self, model: MobileFaceNet) -> None:
        for step in _plan(model):
            kind = step[0]
            if kind == "block":
                self.block_inputs[step[1]] = self.current
            elif kind == "tap":
                self.taps[step[1]] = self.current
            elif kind == "conv":
                self.conv(step[1], step[2])
            elif kind == "residual":
                self.residual(step[1])
            else:
                self.head(step[1], step[2])
        if self.pos != len(self.units):
            extra = ", ".join(u.describe() for u in self.units[self.pos:self.pos + 3])
            raise self.fail(f"the IR has {len(self.units) - self.pos} unit(s) beyond ferkit's MobileFaceNet: {extra}")


def _check_complete(sd: dict[str, torch.Tensor], model: nn.Module, xml_path: Path) -> None:
    """Every tensor of ``MobileFaceNet`` (``num_batches_tracked`` included), nothing else, the right shapes."""
    check_state_dict(model.state_dict(), sd, what=f"the state dict converted from {xml_path}", optional=(),
                     hint="MobileFaceNet", error=IRError)


def _check_consts_used(ir: IRModel, used: dict[int, str]) -> None:
    unused = [c for c in ir.by_type("Const") if c.id not in used]
    if unused:
        names = ", ".join(c.describe() for c in unused[:6])
        raise IRError(f"{ir.xml_path}: {len(unused)} Const layer(s) not used by the conversion: {names}")


# ---- public API ---------------------------------------------------------------------------------------------------

def convert_mobilefacenet_ir(xml_path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict]:
    """Convert the author's MobileFaceNet IR (.xml, .bin or their folder) into a ferkit state dict.

    Returns ``(state_dict, info)``: 333 float32 tensors (plus int64 ``num_batches_tracked``) that load strictly into
    ``MobileFaceNet()``, and a dict describing the source (hashes, licence, precision, the input the IR expects, the
    IR tensors of the three taps and of the output).

    Raises:
        IRError: unreadable IR, a layer outside the MobileFaceNet pattern, wiring or shapes that differ from ferkit's
            module, a key filled twice or not at all, or a Const the conversion did not use.
    """
    ir = read_ir(xml_path)
    graph = _walk(ir)
    model = MobileFaceNet(NUM_OUTPUTS)
    matcher = _Matcher(ir, graph.units, graph.start)
    matcher.run(model)
    if graph.out != matcher.current:
        raise IRError(f"{ir.xml_path}: the Result reads {matcher.tensor_name(graph.out)}, not the head's output "
                      f"{matcher.tensor_name(matcher.current)}")
    _check_complete(matcher.sd, model, ir.xml_path)
    _check_consts_used(ir, graph.used)
    return matcher.sd, _info(ir, graph, matcher, model)


def _tensor_info(ir: IRModel, t: Tensor) -> dict:
    layer = ir.layers[t[0]]
    return {"layer": layer.name, "id": layer.id, "type": layer.type, "shape": list(layer.output_shape(t[1]))}


def _info(ir: IRModel, graph: _Graph, matcher: _Matcher, model: MobileFaceNet) -> dict:
    kernels = {_const_behind(ir, u.conv if isinstance(u, _ConvUnit) else u.linear, 1)[0].data["element_type"]
               for u in graph.units if not isinstance(u, _AddUnit)}
    precision = "mixed" if len(kernels) != 1 else {"f16": "fp16", "f32": "fp32"}.get(kernels.pop(), "other")
    params = {n for n, _ in model.named_parameters()}
    bn2d = [u for u in graph.units if isinstance(u, _ConvUnit)]
    return {
        "format": "openvino_ir",
        "model": "mobilefacenet",
        "source": {"xml": str(ir.xml_path), "bin": str(ir.bin_path)},
        "source_sha256": {"xml": sha256_file(ir.xml_path), "bin": sha256_file(ir.bin_path)},
        "licence": LICENCE,
        "precision": precision,
        "ir_version": ir.version,
        "ir_name": ir.name,
        "layer_types": dict(Counter(layer.type for layer in ir.layers.values())),
        "const_element_types": dict(Counter(c.data["element_type"] for c in ir.by_type("Const"))),
        "num_tensors": len(matcher.sd),
        "num_parameters": int(sum(v.numel() for k, v in matcher.sd.items() if k in params)),
        "input": {"name": graph.param.name, "shape": list(graph.param.output_shape()),
                  "element_type": graph.param.data.get("element_type")},
        "input_scale": graph.pre_scale.tolist(),
        "input_mean": (-graph.pre_shift / graph.pre_scale + 0.0).tolist(),
        "preprocessing_in_graph": graph.pre_steps,
        "data_path_converts": graph.converts,
        "channel_order": "not encoded in the IR (no channel reversal in the graph; converter option "
                         f"reverse_input_channels={ir.meta.get('reverse_input_channels', 'unknown')})",
        "expected_input": EXPECTED_INPUT if not graph.pre_steps else
        "see preprocessing_in_graph: apply (x - input_mean) * input_scale before ferkit's module",
        "converter_meta": {k: ir.meta[k] for k in ("framework", "data_type", "mean_values", "scale_values",
                                                    "reverse_input_channels", "input_shape") if k in ir.meta},
        "folded_batchnorm": {
            "batchnorm2d": len(bn2d),
            "batchnorm2d_scale_is_one": sum(bool(np.all(u.scale == 1)) for u in bn2d),
            "batchnorm1d": "per-feature Multiply + Add after the MatMul",
            "eps": model.conv1.bn.eps,
            "encoding": "bn.weight=scale, bn.bias=shift, running_mean=0, running_var=1-eps",
        },
        "taps": {name: _tensor_info(ir, t) for name, t in matcher.taps.items()},
        "output": _tensor_info(ir, graph.out) | {"name": graph.result.name,
                                                 "meaning": "68 (x, y) pairs in [0, 1] of the input crop"},
    }


def is_mobilefacenet_ir(path: str | os.PathLike) -> bool:
    """Cheap check (XML only) that ``path`` (.xml, .bin or folder) is an IR of the 68-landmark MobileFaceNet:
    one (1|N, 3, 112, 112) input, one 136-value output, 49 (Group)Convolutions and PReLU activations."""
    try:
        xml, _ = resolve_ir_paths(path)
        ir = read_ir(xml, need_bin=False)
    except (IRError, OSError, ValueError):
        return False
    params, results = ir.by_type("Parameter"), ir.by_type("Result")
    if len(params) != 1 or len(results) != 1 or not results[0].inputs:
        return False
    shape, out = params[0].output_shape(), results[0].inputs[0].shape
    types = Counter(layer.type for layer in ir.layers.values())
    return (len(shape) == 4 and shape[0] in (1, -1) and shape[1:] == (3, INPUT_SIZE, INPUT_SIZE)
            and len(out) >= 2 and out[-1] == NUM_OUTPUTS and all(d in (1, -1) for d in out[:-1])
            and types["Convolution"] + types["GroupConvolution"] == NUM_CONVS and types["PReLU"] > 0)
