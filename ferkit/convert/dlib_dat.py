"""Read dlib DNN files (``.dat``) and convert dlib's face-recognition ResNet to :class:`DlibResNet` tensors.

dlib's serialization (``dlib/serialize.h``, ``dlib/dnn``): integers are one byte ``0x80 * negative + byte count``
followed by the little-endian magnitude; a float is a (mantissa, exponent) integer pair; a string is a length and
its bytes; a bool is the character ``'0'`` / ``'1'``; a tensor is ``version 2, n, k, nr, nc`` and raw little-endian
float32 values; an alias tensor (a view into a layer's packed parameters) is ``version 1, n, k, nr, nc``.

A ``loss_metric`` network file holds: version, the loss name and fields, the chain of layer versions from the output
inwards (``2`` per layer, ``1`` per tag/skip layer, ``3`` for the layer on the input), the input layer, then every
layer from the input outwards as its name and fields followed by three bools and three (empty) tensors of training
state. Tag/skip layers carry no data: which layers a residual sum joins is fixed by the architecture, so the
converter checks the file's layer sequence against :class:`DlibResNet` exactly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ferkit.errors import WeightsError

LICENCE = "CC0-1.0 (dlib-models: dlib_face_recognition_resnet_model_v1, public domain)"


@dataclass
class DlibLayer:
    """One computational layer: dlib type name (``con_4``, ``affine_``, ...), its fields and packed parameters."""

    name: str
    fields: dict[str, Any] = field(default_factory=dict)
    params: np.ndarray | None = None


@dataclass
class DlibNet:
    """A parsed dlib network file."""

    loss: str
    loss_fields: dict[str, float]
    input: DlibLayer
    layers: list[DlibLayer]
    chain: list[int]


class _Reader:
    def __init__(self, data: bytes, path: str):
        self.data, self.pos, self.path = data, 0, path

    def fail(self, what: str) -> WeightsError:
        return WeightsError(f"{self.path}: not a dlib DNN file this converter understands: {what} at byte {self.pos}")

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise self.fail(f"file ends early (needs {n} more bytes)")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def int(self) -> int:
        head = self.take(1)[0]
        size, negative = head & 0x0F, bool(head & 0x80)
        if size > 8 or head & 0x70:
            raise self.fail(f"bad integer header 0x{head:02x}")
        value = int.from_bytes(self.take(size), "little")
        return -value if negative else value

    def float(self) -> float:
        mantissa, exponent = self.int(), self.int()
        return float(np.ldexp(np.float64(mantissa), exponent))

    def str(self, limit: int = 256) -> str:
        n = self.int()
        if not 0 < n <= limit:
            raise self.fail(f"bad string length {n}")
        raw = self.take(n)
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError:
            raise self.fail(f"non-text layer name {raw[:16]!r}") from None

    def bool(self) -> bool:
        c = self.take(1)
        if c not in (b"0", b"1"):
            raise self.fail(f"bad bool {c!r}")
        return c == b"1"

    def dims(self, version: int) -> tuple[int, int, int, int]:
        v = self.int()
        if v != version:
            raise self.fail(f"tensor version {v}, expected {version}")
        dims = tuple(self.int() for _ in range(4))
        if min(dims) < 0:
            raise self.fail(f"negative tensor size {dims}")
        return dims  # type: ignore[return-value]

    def tensor(self) -> np.ndarray:
        dims = self.dims(2)
        count = int(np.prod(dims))
        raw = self.take(4 * count)
        return np.frombuffer(raw, dtype="<f4").reshape(dims).astype(np.float32)


def _pool_fields(r: _Reader) -> dict[str, Any]:
    return dict(zip(("nr", "nc", "stride_y", "stride_x", "pad_y", "pad_x"), (r.int() for _ in range(6))))


def _con(r: _Reader) -> tuple[dict[str, Any], np.ndarray]:
    params = r.tensor()
    keys = ("num_filters", "nr", "nc", "stride_y", "stride_x", "pad_y", "pad_x")
    f: dict[str, Any] = dict(zip(keys, (r.int() for _ in keys)))
    f["filters"], f["biases"] = r.dims(1), r.dims(1)
    f["multipliers"] = [r.float() for _ in range(4)]
    return f, params


def _affine(r: _Reader) -> tuple[dict[str, Any], np.ndarray]:
    params = r.tensor()
    return {"gamma": r.dims(1), "beta": r.dims(1), "mode": r.int()}, params


def _fc(r: _Reader) -> tuple[dict[str, Any], np.ndarray]:
    f: dict[str, Any] = {"num_outputs": r.int(), "num_inputs": r.int()}
    params = r.tensor()
    f.update(weights=r.dims(1), biases=r.dims(1), bias_mode=r.int(), multipliers=[r.float() for _ in range(4)])
    return f, params


_LAYER_READERS = {
    "con_4": _con,
    "affine_": _affine,
    "fc_2": _fc,
    "relu_": lambda r: ({}, None),
    "add_prev_": lambda r: ({}, None),
    "max_pool_2": lambda r: (_pool_fields(r), None),
    "avg_pool_2": lambda r: (_pool_fields(r), None),
}


def read_dlib_dnn(path: str | os.PathLike) -> DlibNet:
    """Parse a dlib ``loss_metric`` network file (``.dat``) into its layers, input side first.

    Raises:
        WeightsError: the file is not such a network, is truncated, or holds a layer type not listed in
            ``_LAYER_READERS`` (the message names it and the byte offset).
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"dlib model file not found: {path}")
    r = _Reader(path.read_bytes(), str(path))
    if r.int() != 1:
        raise r.fail("unknown file version")
    loss = r.str()
    if loss != "loss_metric_2":
        raise r.fail(f"loss layer {loss!r}, expected 'loss_metric_2' (a face-recognition network)")
    loss_fields = {"margin": r.float(), "distance_threshold": r.float()}
    chain = []
    while not chain or chain[-1] != 3:
        chain.append(r.int())
        if chain[-1] not in (1, 2, 3) or len(chain) > 10_000:
            raise r.fail(f"bad layer version {chain[-1]}")
    in_name = r.str()
    if in_name != "input_rgb_image_sized":
        raise r.fail(f"input layer {in_name!r}, expected 'input_rgb_image_sized'")
    inp = DlibLayer(in_name, {"mean": [r.float() for _ in range(3)], "nr": r.int(), "nc": r.int()})
    layers = []
    while r.pos < len(r.data):
        name = r.str()
        if name not in _LAYER_READERS:
            raise r.fail(f"unsupported layer type {name!r}")
        fields, params = _LAYER_READERS[name](r)
        for _ in range(3):  # this_layer_setup_called, gradient_input_is_stale, get_output_and_gradient_input_disabled
            r.bool()
        for _ in range(3):  # x_grad, cached_output, params_grad
            r.tensor()
        if not layers:
            fields["sample_expansion_factor"] = r.int()
        layers.append(DlibLayer(name, fields, params))
    if len(layers) != chain.count(2) + chain.count(3):
        raise r.fail(f"{len(layers)} layers but the version chain announces {chain.count(2) + chain.count(3)}")
    return DlibNet(loss, loss_fields, inp, layers, chain)


def _expected_layers(model: torch.nn.Module) -> list[tuple[str, str, dict[str, int]]]:
    """(dlib layer name, target module prefix, required fields) for :class:`DlibResNet`, input side first."""
    def con(prefix: str, conv: torch.nn.Conv2d) -> tuple[str, str, dict[str, int]]:
        return ("con_4", prefix, {"num_filters": conv.out_channels, "nr": conv.kernel_size[0],
                                  "nc": conv.kernel_size[1], "stride_y": conv.stride[0], "stride_x": conv.stride[1],
                                  "pad_y": conv.padding[0], "pad_x": conv.padding[1]})

    seq = [con("conv1", model.conv1), ("affine_", "bn1", {}), ("relu_", "", {}),
           ("max_pool_2", "", {"nr": 3, "nc": 3, "stride_y": 2, "stride_x": 2, "pad_y": 0, "pad_x": 0})]
    for li, level in enumerate(model.levels):
        for bi, block in enumerate(level):
            p = f"levels.{li}.{bi}."
            seq += [con(p + "conv1", block.conv1), ("affine_", p + "bn1", {}), ("relu_", "", {}),
                    con(p + "conv2", block.conv2), ("affine_", p + "bn2", {})]
            if block.down:
                seq.append(("avg_pool_2", "", {"nr": 2, "nc": 2, "stride_y": 2, "stride_x": 2, "pad_y": 0,
                                               "pad_x": 0}))
            seq += [("add_prev_", "", {}), ("relu_", "", {})]
    seq += [("avg_pool_2", "", {"nr": 0, "nc": 0}), ("fc_2", "fc", {"num_outputs": 128, "bias_mode": 1})]
    return seq


def dlib_resnet_state_dict(net: DlibNet) -> dict[str, torch.Tensor]:
    """Map a parsed face-recognition network onto :class:`DlibResNet`'s state dict (strict: every layer, field
    and parameter must match the architecture)."""
    from ferkit.constants import DLIB_MEAN
    from ferkit.nn.dlib_resnet import DlibResNet

    model = DlibResNet()
    if any(abs(a - b) > 1e-3 for a, b in zip(net.input.fields["mean"], DLIB_MEAN)):
        raise WeightsError(f"dlib input mean {net.input.fields['mean']} differs from DlibResNet's {DLIB_MEAN}")
    expected = _expected_layers(model)
    got = [layer.name for layer in net.layers]
    if got != [e[0] for e in expected]:
        first = next((i for i, (g, e) in enumerate(zip(got, expected)) if g != e[0]), min(len(got), len(expected)))
        raise WeightsError(f"dlib network layer {first} is {got[first:first + 1]} but DlibResNet expects "
                           f"{[e[0] for e in expected[first:first + 1]]} ({len(got)} vs {len(expected)} layers): "
                           "not dlib_face_recognition_resnet_model_v1's architecture")
    target = model.state_dict()
    out: dict[str, torch.Tensor] = {}
    for i, (layer, (name, prefix, required)) in enumerate(zip(net.layers, expected)):
        for key, value in required.items():
            if layer.fields.get(key) != value:
                raise WeightsError(f"dlib layer {i} ({name}) has {key}={layer.fields.get(key)}, expected {value}")
        if layer.params is not None:
            out.update(_layer_tensors(layer, prefix, target))
    missing = sorted(set(target) - set(out))
    if missing:
        raise WeightsError(f"dlib file filled no value for {missing}")
    return out


def _layer_tensors(layer: DlibLayer, prefix: str, target: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    flat = torch.from_numpy(layer.params.reshape(-1).copy())
    if layer.name == "con_4":
        w, b = target[prefix + ".weight"], target[prefix + ".bias"]
        parts = {prefix + ".weight": (w.shape, 0), prefix + ".bias": (b.shape, w.numel())}
        size = w.numel() + b.numel()
    elif layer.name == "affine_":
        c = target[prefix + ".weight"].numel()
        parts = {prefix + ".weight": ((c,), 0), prefix + ".bias": ((c,), c)}
        size = 2 * c
    else:  # fc_2: (num_inputs, num_outputs) matrix, y = x @ W
        w = target[prefix + ".weight"]
        if flat.numel() != w.numel():
            raise WeightsError(f"dlib fc layer has {flat.numel()} values, {prefix}.weight needs {w.numel()}")
        return {prefix + ".weight": flat.view(w.shape[1], w.shape[0]).t().contiguous()}
    if flat.numel() != size:
        raise WeightsError(f"dlib {layer.name} layer for {prefix} has {flat.numel()} parameters, expected {size}")
    return {k: flat[o:o + int(np.prod(s))].view(s).clone() for k, (s, o) in parts.items()}


def is_dlib_dnn(path: str | os.PathLike) -> bool:
    """Cheap check: the file starts like a dlib ``loss_metric`` network."""
    try:
        with open(path, "rb") as f:
            head = f.read(20)
    except OSError:
        return False
    return head[:2] == b"\x01\x01" and b"loss_metric" in head


def convert_dlib_resnet(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """``dlib_face_recognition_resnet_model_v1.dat`` -> (:class:`DlibResNet` state dict, info)."""
    from ferkit.checkpoint import sha256_file

    net = read_dlib_dnn(path)
    state = dlib_resnet_state_dict(net)
    info = {"format": "dlib_dat", "model": "dlib_resnet", "source_sha256": sha256_file(path), "licence": LICENCE,
            "num_params": sum(v.numel() for v in state.values()), "input_size": net.input.fields["nr"],
            "loss": {"name": net.loss, **net.loss_fields}}
    return state, info
