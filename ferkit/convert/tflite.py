"""A small, dependency-free reader for TFLite flatbuffers (the ``.tflite`` format).

Only what weight conversion needs: the first subgraph's tensors (with their constant data), operators (with the
options of convolutions and pooling) and the graph inputs/outputs. Field numbers follow the public TFLite schema
(``schema.fbs``, version 3).

Example::

    model = read_tflite("face_landmark.tflite")
    for op in model.operators:
        print(op.op, [model.tensors[i].name for i in op.inputs], op.options)
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ferkit.errors import CheckpointError

FILE_IDENTIFIER = b"TFL3"

# BuiltinOperator enum, codes 0..126 in order.
_OP_NAMES = (
    "ADD", "AVERAGE_POOL_2D", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D", "DEPTH_TO_SPACE", "DEQUANTIZE",
    "EMBEDDING_LOOKUP", "FLOOR", "FULLY_CONNECTED", "HASHTABLE_LOOKUP", "L2_NORMALIZATION", "L2_POOL_2D",
    "LOCAL_RESPONSE_NORMALIZATION", "LOGISTIC", "LSH_PROJECTION", "LSTM", "MAX_POOL_2D", "MUL", "RELU", "RELU_N1_TO_1",
    "RELU6", "RESHAPE", "RESIZE_BILINEAR", "RNN", "SOFTMAX", "SPACE_TO_DEPTH", "SVDF", "TANH", "CONCAT_EMBEDDINGS",
    "SKIP_GRAM", "CALL", "CUSTOM", "EMBEDDING_LOOKUP_SPARSE", "PAD", "UNIDIRECTIONAL_SEQUENCE_RNN", "GATHER",
    "BATCH_TO_SPACE_ND", "SPACE_TO_BATCH_ND", "TRANSPOSE", "MEAN", "SUB", "DIV", "SQUEEZE",
    "UNIDIRECTIONAL_SEQUENCE_LSTM", "STRIDED_SLICE", "BIDIRECTIONAL_SEQUENCE_RNN", "EXP", "TOPK_V2", "SPLIT",
    "LOG_SOFTMAX", "DELEGATE", "BIDIRECTIONAL_SEQUENCE_LSTM", "CAST", "PRELU", "MAXIMUM", "ARG_MAX", "MINIMUM", "LESS",
    "NEG", "PADV2", "GREATER", "GREATER_EQUAL", "LESS_EQUAL", "SELECT", "SLICE", "SIN", "TRANSPOSE_CONV",
    "SPARSE_TO_DENSE", "TILE", "EXPAND_DIMS", "EQUAL", "NOT_EQUAL", "LOG", "SUM", "SQRT", "RSQRT", "SHAPE", "POW",
    "ARG_MIN", "FAKE_QUANT", "REDUCE_PROD", "REDUCE_MAX", "PACK", "LOGICAL_OR", "ONE_HOT", "LOGICAL_AND",
    "LOGICAL_NOT", "UNPACK", "REDUCE_MIN", "FLOOR_DIV", "REDUCE_ANY", "SQUARE", "ZEROS_LIKE", "FILL", "FLOOR_MOD",
    "RANGE", "RESIZE_NEAREST_NEIGHBOR", "LEAKY_RELU", "SQUARED_DIFFERENCE", "MIRROR_PAD", "ABS", "SPLIT_V", "UNIQUE",
    "CEIL", "REVERSE_V2", "ADD_N", "GATHER_ND", "COS", "WHERE", "RANK", "ELU", "REVERSE_SEQUENCE", "MATRIX_DIAG",
    "QUANTIZE", "MATRIX_SET_DIAG", "ROUND", "HARD_SWISH", "IF", "WHILE", "NON_MAX_SUPPRESSION_V4",
    "NON_MAX_SUPPRESSION_V5", "SCATTER_ND", "SELECT_V2", "DENSIFY", "SEGMENT_SUM", "BATCH_MATMUL",
)

# TensorType enum -> numpy dtype name (None: no numpy equivalent, data left as None).
_DTYPES: dict[int, str | None] = {
    0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 5: None, 6: "bool", 7: "int16",
    8: "complex64", 9: "int8", 10: "float64", 11: "complex128", 12: "uint64", 13: None, 14: None,
    15: "uint32", 16: "uint16",
}  # fmt: skip

_PADDING = {0: "SAME", 1: "VALID"}
_ACTIVATION = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"}


class TFLiteFormatError(CheckpointError):
    """The bytes are not a (complete) TFLite flatbuffer."""


# --------------------------------------------------------------------------------------------------------------------
# Generic flatbuffer access


class _Table:
    """A flatbuffer table at byte ``pos`` of ``buf``; fields are addressed by their schema index (0-based)."""

    def __init__(self, buf: bytes, pos: int) -> None:
        self.buf = buf
        self.pos = pos
        vtable = pos - _unpack(buf, "<i", pos)
        self._vt = vtable
        self._vt_size = _unpack(buf, "<H", vtable)

    def _field(self, index: int) -> int | None:
        """Absolute position of field ``index``, or None when the field is absent (schema default applies)."""
        entry = 4 + 2 * index
        if entry + 2 > self._vt_size:
            return None
        offset = _unpack(self.buf, "<H", self._vt + entry)
        return self.pos + offset if offset else None

    def scalar(self, index: int, fmt: str, default: int | float = 0) -> Any:
        """A scalar field (struct format such as ``"<i"``, ``"<B"``, ``"<Q"``)."""
        pos = self._field(index)
        return default if pos is None else _unpack(self.buf, fmt, pos)

    def _indirect(self, index: int) -> int | None:
        pos = self._field(index)
        return None if pos is None else pos + _unpack(self.buf, "<I", pos)

    def table(self, index: int) -> _Table | None:
        """A sub-table field."""
        target = self._indirect(index)
        return None if target is None else _Table(self.buf, target)

    def _vector(self, index: int) -> tuple[int, int]:
        """(position of the first element, length) of a vector field; (0, 0) when absent."""
        target = self._indirect(index)
        if target is None:
            return 0, 0
        return target + 4, _unpack(self.buf, "<I", target)

    def tables(self, index: int) -> list[_Table]:
        """A vector of tables."""
        start, n = self._vector(index)
        _check(self.buf, start, 4 * n)
        return [_Table(self.buf, p + _unpack(self.buf, "<I", p)) for p in range(start, start + 4 * n, 4)]

    def array(self, index: int, dtype: str) -> np.ndarray:
        """A vector of scalars as a numpy array (little-endian ``dtype`` such as ``"<i4"``, ``"u1"``)."""
        start, n = self._vector(index)
        dt = np.dtype(dtype)
        _check(self.buf, start, n * dt.itemsize)
        return np.frombuffer(self.buf, dtype=dt, count=n, offset=start) if n else np.zeros(0, dt)

    def string(self, index: int) -> str:
        """A string field ('' when absent)."""
        return self.array(index, "u1").tobytes().decode("utf-8", errors="replace")


def _check(buf: bytes, pos: int, size: int) -> None:
    if pos < 0 or size < 0 or pos + size > len(buf):
        raise TFLiteFormatError(f"offset {pos}+{size} outside the {len(buf)}-byte buffer (truncated or corrupt file)")


def _unpack(buf: bytes, fmt: str, pos: int) -> Any:
    _check(buf, pos, struct.calcsize(fmt))
    return struct.unpack_from(fmt, buf, pos)[0]


# --------------------------------------------------------------------------------------------------------------------
# TFLite model


@dataclass(frozen=True)
class TFLiteTensor:
    """One tensor of the graph; ``data`` holds the constant contents (shaped like ``shape``) or None."""

    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    data: np.ndarray | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class TFLiteOperator:
    """One operator: its name (``"CONV_2D"``), tensor indices (-1 = optional input absent) and decoded options."""

    index: int
    op: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: dict[str, Any]


@dataclass
class TFLiteModel:
    """The main subgraph of a ``.tflite`` file."""

    tensors: list[TFLiteTensor]
    operators: list[TFLiteOperator]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    version: int = 3
    description: str = ""
    num_subgraphs: int = 1
    source: str = "<bytes>"

    def producers(self) -> dict[int, TFLiteOperator]:
        """Tensor index -> the operator that writes it."""
        return {t: op for op in self.operators for t in op.outputs}

    def consumers(self) -> dict[int, list[TFLiteOperator]]:
        """Tensor index -> the operators that read it (in graph order)."""
        out: dict[int, list[TFLiteOperator]] = {}
        for op in self.operators:
            for t in op.inputs:
                if t >= 0:
                    out.setdefault(t, []).append(op)
        return out


def has_tflite_identifier(data: bytes) -> bool:
    """True when ``data`` starts like a TFLite flatbuffer (file identifier ``TFL3`` at bytes 4..8)."""
    return len(data) >= 8 and data[4:8] == FILE_IDENTIFIER


def read_tflite(path_or_bytes: str | Path | bytes | bytearray, source: str | None = None) -> TFLiteModel:
    """Parse a ``.tflite`` file (path or raw bytes) into a :class:`TFLiteModel`.

    ``source`` names raw bytes in messages (default ``"<bytes>"``). Raises :class:`TFLiteFormatError` (a
    ``ValueError``) naming the source when the bytes are not a TFLite flatbuffer or are truncated.
    """
    if isinstance(path_or_bytes, (bytes, bytearray)):
        buf, source = bytes(path_or_bytes), source or "<bytes>"
    else:
        source = str(path_or_bytes)
        try:
            buf = Path(path_or_bytes).read_bytes()
        except OSError as exc:
            raise TFLiteFormatError(f"{source}: cannot read TFLite file ({exc})") from exc
    if not has_tflite_identifier(buf):
        found = buf[4:8] if len(buf) >= 8 else f"only {len(buf)} bytes"
        raise TFLiteFormatError(f"{source}: not a TFLite flatbuffer (file identifier {found!r}, expected b'TFL3')")
    try:
        model = _parse_model(buf)
    except TFLiteFormatError as exc:
        raise TFLiteFormatError(f"{source}: {exc}") from None
    except (struct.error, ValueError, IndexError, UnicodeDecodeError) as exc:
        raise TFLiteFormatError(f"{source}: corrupt TFLite flatbuffer ({exc})") from exc
    model.source = source
    return model


def _parse_model(buf: bytes) -> TFLiteModel:
    # Model: 0 version, 1 operator_codes, 2 subgraphs, 3 description, 4 buffers
    root = _Table(buf, _unpack(buf, "<I", 0))
    op_names = [_op_name(code) for code in root.tables(1)]
    subgraphs = root.tables(2)
    if not subgraphs:
        raise TFLiteFormatError("the model has no subgraph")
    buffers = root.tables(4)
    graph = subgraphs[0]  # SubGraph: 0 tensors, 1 inputs, 2 outputs, 3 operators, 4 name
    tensors = [_parse_tensor(i, t, buffers, buf) for i, t in enumerate(graph.tables(0))]
    operators = [_parse_operator(i, op, op_names) for i, op in enumerate(graph.tables(3))]
    for op in operators:
        for t in op.inputs + op.outputs:
            if t >= len(tensors):
                raise TFLiteFormatError(f"operator {op.index} ({op.op}) refers to tensor {t} of {len(tensors)}")
    return TFLiteModel(
        tensors=tensors,
        operators=operators,
        inputs=tuple(int(i) for i in graph.array(1, "<i4")),
        outputs=tuple(int(i) for i in graph.array(2, "<i4")),
        version=root.scalar(0, "<I"),
        description=root.string(3),
        num_subgraphs=len(subgraphs),
    )


def _op_name(code: _Table) -> str:
    """OperatorCode: 0 deprecated_builtin_code (int8), 1 custom_code, 3 builtin_code (int32)."""
    builtin = max(code.scalar(0, "<b"), code.scalar(3, "<i"))
    if builtin == 32:  # CUSTOM
        return f"CUSTOM:{code.string(1)}"
    return _OP_NAMES[builtin] if 0 <= builtin < len(_OP_NAMES) else f"BUILTIN_{builtin}"


def _parse_tensor(index: int, table: _Table, buffers: list[_Table], buf: bytes) -> TFLiteTensor:
    """Tensor: 0 shape, 1 type, 2 buffer, 3 name."""
    shape = tuple(int(s) for s in table.array(0, "<i4"))
    type_code = table.scalar(1, "<b")
    dtype = _DTYPES.get(type_code)
    buffer_index = table.scalar(2, "<I")
    data = None
    if dtype is not None and buffer_index > 0:
        if buffer_index >= len(buffers):
            raise TFLiteFormatError(f"tensor {index} refers to buffer {buffer_index} of {len(buffers)}")
        data = _buffer_array(buffers[buffer_index], buf, dtype, shape, index)
    return TFLiteTensor(index, table.string(3), shape, dtype or f"type{type_code}", data)


def _buffer_array(buffer: _Table, buf: bytes, dtype: str, shape: tuple[int, ...], index: int) -> np.ndarray | None:
    """Buffer: 0 data (bytes), 1 offset / 2 size (data outside the flatbuffer, for files > 2 GB)."""
    raw = buffer.array(0, "u1")
    offset, size = buffer.scalar(1, "<Q"), buffer.scalar(2, "<Q")
    if raw.size == 0 and offset > 1:
        _check(buf, offset, size)
        raw = np.frombuffer(buf, dtype=np.uint8, count=size, offset=offset)
    if raw.size == 0:
        return None
    dt = np.dtype(dtype).newbyteorder("<")
    count = int(np.prod(shape)) if shape else 1
    if raw.size != count * dt.itemsize:
        raise TFLiteFormatError(f"tensor {index}: buffer has {raw.size} bytes, shape {shape} x {dt} needs "
                                f"{count * dt.itemsize}")
    return np.frombuffer(raw.tobytes(), dtype=dt).astype(dtype).reshape(shape)


def _parse_operator(index: int, table: _Table, op_names: list[str]) -> TFLiteOperator:
    """Operator: 0 opcode_index, 1 inputs, 2 outputs, 3 builtin_options_type, 4 builtin_options."""
    opcode = table.scalar(0, "<I")
    if opcode >= len(op_names):
        raise TFLiteFormatError(f"operator {index} has opcode index {opcode} of {len(op_names)}")
    options = _parse_options(table.scalar(3, "<B"), table.table(4))
    return TFLiteOperator(
        index=index,
        op=op_names[opcode],
        inputs=tuple(int(i) for i in table.array(1, "<i4")),
        outputs=tuple(int(i) for i in table.array(2, "<i4")),
        options=options,
    )


def _parse_options(kind: int, table: _Table | None) -> dict[str, Any]:
    """Decode Conv2DOptions (1), DepthwiseConv2DOptions (2), Pool2DOptions (5) and AddOptions (11)."""
    if table is None:
        return {}
    if kind == 1:  # padding, stride_w, stride_h, fused_activation_function, dilation_w, dilation_h
        return {
            "padding": _PADDING.get(table.scalar(0, "<b"), "?"),
            "stride": (table.scalar(2, "<i"), table.scalar(1, "<i")),
            "activation": _ACTIVATION.get(table.scalar(3, "<b"), "?"),
            "dilation": (table.scalar(5, "<i", 1), table.scalar(4, "<i", 1)),
        }
    if kind == 2:  # padding, stride_w, stride_h, depth_multiplier, fused_activation_function, dilation_w, dilation_h
        return {
            "padding": _PADDING.get(table.scalar(0, "<b"), "?"),
            "stride": (table.scalar(2, "<i"), table.scalar(1, "<i")),
            "depth_multiplier": table.scalar(3, "<i"),
            "activation": _ACTIVATION.get(table.scalar(4, "<b"), "?"),
            "dilation": (table.scalar(6, "<i", 1), table.scalar(5, "<i", 1)),
        }
    if kind == 5:  # padding, stride_w, stride_h, filter_width, filter_height, fused_activation_function
        return {
            "padding": _PADDING.get(table.scalar(0, "<b"), "?"),
            "stride": (table.scalar(2, "<i"), table.scalar(1, "<i")),
            "filter": (table.scalar(4, "<i"), table.scalar(3, "<i")),
            "activation": _ACTIVATION.get(table.scalar(5, "<b"), "?"),
        }
    if kind == 11:  # fused_activation_function
        return {"activation": _ACTIVATION.get(table.scalar(0, "<b"), "?")}
    return {"options_type": kind}
