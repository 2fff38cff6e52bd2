"""Reader for OpenVINO IR v10 / v11 (``model.xml`` graph + ``model.bin`` weights) that needs only the standard library
and numpy, not the ``openvino`` package.

The XML lists layers (``id``, ``name``, ``type``, ``version``, a ``<data>`` element of string attributes, input and
output ports with their dims) and edges ``from-layer/from-port -> to-layer/to-port``. Input ports of a layer are
numbered before its output ports. ``Const`` layers hold ``element_type``, ``shape``, ``offset`` and ``size`` of their
bytes in the .bin (little-endian, C order).
"""

from __future__ import annotations

import heapq
import os
import xml.etree.ElementTree as ET
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ferkit.errors import CheckpointError

SUPPORTED_VERSIONS = (10, 11)

# IR element type -> little-endian numpy dtype. ``bf16`` is widened to float32 by :meth:`IRModel.const`.
ELEMENT_TYPES: dict[str, str] = {
    "f16": "<f2", "f32": "<f4", "f64": "<f8", "bf16": "<u2",
    "i8": "i1", "i16": "<i2", "i32": "<i4", "i64": "<i8",
    "u8": "u1", "u16": "<u2", "u32": "<u4", "u64": "<u8", "boolean": "u1",
}


class IRError(CheckpointError):
    """An OpenVINO IR file pair is missing, truncated, malformed or not an IR."""


@dataclass(frozen=True)
class Port:
    """One port of a layer. ``shape`` uses -1 for a dynamic dimension."""

    id: int
    shape: tuple[int, ...]
    precision: str | None = None
    names: tuple[str, ...] = ()


@dataclass(frozen=True)
class Layer:
    """One ``<layer>``: ``data`` keeps the raw string attributes of its ``<data>`` element."""

    id: int
    name: str
    type: str
    version: str
    data: dict[str, str]
    inputs: tuple[Port, ...]
    outputs: tuple[Port, ...]

    def ints(self, key: str, default: tuple[int, ...] | None = None) -> tuple[int, ...]:
        """A comma-separated integer attribute of ``<data>`` (``"1,1"`` -> ``(1, 1)``, ``""`` -> ``()``)."""
        if key not in self.data:
            if default is None:
                raise KeyError(f"layer {self.id} '{self.name}' ({self.type}) has no attribute '{key}'")
            return default
        return parse_ints(self.data[key])

    def output_shape(self, port: int | None = None) -> tuple[int, ...]:
        """Shape of output ``port`` (the first output when None)."""
        if port is None:
            return self.outputs[0].shape
        for p in self.outputs:
            if p.id == port:
                return p.shape
        raise KeyError(f"layer {self.id} '{self.name}' has no output port {port}")

    def describe(self) -> str:
        return f"{self.type} '{self.name}' (layer {self.id})"


@dataclass(frozen=True)
class Edge:
    from_layer: int
    from_port: int
    to_layer: int
    to_port: int


@dataclass
class IRModel:
    """A parsed IR. Tensors are identified by ``(layer id, output port id)``."""

    xml_path: Path
    bin_path: Path
    name: str
    version: int
    layers: dict[int, Layer]
    edges: tuple[Edge, ...]
    meta: dict[str, str] = field(default_factory=dict)
    _blob: bytes | None = field(default=None, repr=False)
    _in: dict[tuple[int, int], tuple[int, int]] = field(default_factory=dict, repr=False)
    _out: dict[int, list[tuple[int, int, int]]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._in = {(e.to_layer, e.to_port): (e.from_layer, e.from_port) for e in self.edges}
        out: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
        for e in self.edges:
            out[e.from_layer].append((e.from_port, e.to_layer, e.to_port))
        self._out = dict(out)

    # ---- graph queries ------------------------------------------------------------------------------------------

    def by_type(self, type_: str) -> list[Layer]:
        return [layer for layer in self.layers.values() if layer.type == type_]

    def source(self, layer_id: int, port: int) -> tuple[Layer, int]:
        """Producer ``(layer, output port)`` of input ``port`` of ``layer_id``."""
        try:
            src, src_port = self._in[(layer_id, port)]
        except KeyError:
            raise IRError(f"{self.xml_path}: input port {port} of {self.layers[layer_id].describe()} "
                          f"has no incoming edge") from None
        return self.layers[src], src_port

    def sources(self, layer_id: int) -> list[tuple[Layer, int]]:
        """Producers of every input of ``layer_id``, in input-port order."""
        return [self.source(layer_id, p.id) for p in self.layers[layer_id].inputs]

    def consumers(self, layer_id: int, port: int | None = None) -> list[tuple[Layer, int]]:
        """``(layer, input port)`` pairs fed by ``layer_id`` (output ``port`` only, when given)."""
        return [(self.layers[to], to_port) for from_port, to, to_port in self._out.get(layer_id, [])
                if port is None or from_port == port]

    def topological_order(self) -> list[Layer]:
        """All layers, producers before consumers; ties broken by layer id. Raises on a cycle."""
        indeg = {i: 0 for i in self.layers}
        for e in self.edges:
            indeg[e.to_layer] += 1
        heap = [i for i, d in indeg.items() if d == 0]
        heapq.heapify(heap)
        order = []
        while heap:
            i = heapq.heappop(heap)
            order.append(self.layers[i])
            for _, to, _ in self._out.get(i, []):
                indeg[to] -= 1
                if indeg[to] == 0:
                    heapq.heappush(heap, to)
        if len(order) != len(self.layers):
            raise IRError(f"{self.xml_path}: the graph has a cycle ({len(self.layers) - len(order)} layers on it)")
        return order

    # ---- constants ----------------------------------------------------------------------------------------------

    def const(self, layer_id: int) -> np.ndarray:
        """Data of a ``Const`` layer as a fresh numpy array of its declared shape (bf16 widened to float32)."""
        layer = self.layers[layer_id]
        if layer.type != "Const":
            raise IRError(f"{self.xml_path}: {layer.describe()} is not a Const")
        etype, shape, offset, size = _const_spec(layer, self.xml_path)
        blob = self._bytes()
        count = int(np.prod(shape, dtype=np.int64))
        arr = np.frombuffer(blob, dtype=ELEMENT_TYPES[etype], count=count, offset=offset).reshape(shape).copy()
        if etype == "bf16":
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        return arr

    def _bytes(self) -> bytes:
        if self._blob is None:
            self._blob = self.bin_path.read_bytes()
        return self._blob


# ---- reading ------------------------------------------------------------------------------------------------------

def parse_ints(text: str) -> tuple[int, ...]:
    text = text.strip()
    return tuple(int(t) for t in text.split(",")) if text else ()


def resolve_ir_paths(path: str | os.PathLike) -> tuple[Path, Path]:
    """``(xml, bin)`` for an ``.xml`` path, a ``.bin`` path (its sibling .xml) or a folder holding one IR
    (``mobilefacenet.xml`` preferred when there are several)."""
    path = Path(path)
    if path.is_dir():
        xmls = sorted(path.glob("*.xml"))
        named = [p for p in xmls if p.name == "mobilefacenet.xml"]
        if len(xmls) != 1 and not named:
            found = ", ".join(p.name for p in xmls) or "none"
            raise IRError(f"{path}: expected one OpenVINO IR .xml in the folder, found {found}")
        path = named[0] if named else xmls[0]
    elif path.suffix.lower() == ".bin":
        path = path.with_suffix(".xml")
    return path, path.with_suffix(".bin")


def read_ir(path: str | os.PathLike, *, need_bin: bool = True) -> IRModel:
    """Parse an IR (xml path, bin path or folder). Checks that the .bin exists and covers every ``Const``.

    Raises:
        IRError: missing file, XML that is not an IR (or an unsupported version), inconsistent Const sizes,
            edges to unknown layers/ports, or a .bin shorter than a Const needs.
    """
    xml_path, bin_path = resolve_ir_paths(path)
    root = _parse_root(xml_path)
    layers = _parse_layers(root, xml_path)
    edges = _parse_edges(root, xml_path, layers)
    model = IRModel(xml_path=xml_path, bin_path=bin_path, name=root.get("name", ""), version=int(root.get("version")),
                    layers=layers, edges=edges, meta=_parse_meta(root))
    if need_bin:
        _check_bin(model)
    return model


def _parse_root(xml_path: Path) -> ET.Element:
    if not xml_path.is_file():
        raise IRError(f"{xml_path}: OpenVINO IR .xml not found")
    try:
        root = ET.parse(xml_path).getroot()
    except ET.ParseError as e:
        raise IRError(f"{xml_path}: not an OpenVINO IR (the file is not valid XML: {e})") from e
    if root.tag != "net":
        raise IRError(f"{xml_path}: not an OpenVINO IR (root element <{root.tag}>, expected <net>)")
    version = root.get("version", "")
    if not version.isdigit() or int(version) not in SUPPORTED_VERSIONS:
        raise IRError(f"{xml_path}: OpenVINO IR version '{version}' is not supported (ferkit reads "
                      f"{' and '.join(map(str, SUPPORTED_VERSIONS))})")
    if root.find("layers") is None or root.find("edges") is None:
        raise IRError(f"{xml_path}: not an OpenVINO IR (<net> has no <layers> or <edges>)")
    return root


def _dim(text: str | None) -> int:
    text = (text or "").strip()
    return int(text) if text.lstrip("-").isdigit() else -1  # "?", "-1", "1..10": dynamic


def _ports(parent: ET.Element | None) -> tuple[Port, ...]:
    if parent is None:
        return ()
    ports = []
    for p in parent.findall("port"):
        names = tuple(n.strip() for n in p.get("names", "").split(",") if n.strip())
        ports.append(Port(int(p.get("id")), tuple(_dim(d.text) for d in p.findall("dim")), p.get("precision"), names))
    return tuple(ports)


def _parse_layers(root: ET.Element, xml_path: Path) -> dict[int, Layer]:
    layers: dict[int, Layer] = {}
    for el in root.find("layers").findall("layer"):
        try:
            lid = int(el.get("id"))
        except (TypeError, ValueError):
            raise IRError(f"{xml_path}: <layer> with a missing or non-integer id: {el.attrib}") from None
        if lid in layers:
            raise IRError(f"{xml_path}: duplicate layer id {lid}")
        data = el.find("data")
        layers[lid] = Layer(lid, el.get("name", ""), el.get("type", ""), el.get("version", ""),
                            dict(data.attrib) if data is not None else {}, _ports(el.find("input")),
                            _ports(el.find("output")))
    if not layers:
        raise IRError(f"{xml_path}: the IR has no layers")
    return layers


def _parse_edges(root: ET.Element, xml_path: Path, layers: dict[int, Layer]) -> tuple[Edge, ...]:
    edges = []
    for el in root.find("edges").findall("edge"):
        try:
            e = Edge(*(int(el.get(k)) for k in ("from-layer", "from-port", "to-layer", "to-port")))
        except (TypeError, ValueError):
            raise IRError(f"{xml_path}: malformed <edge> {el.attrib}") from None
        src, dst = layers.get(e.from_layer), layers.get(e.to_layer)
        if src is None or dst is None:
            raise IRError(f"{xml_path}: edge {el.attrib} refers to an unknown layer")
        if e.from_port not in {p.id for p in src.outputs} or e.to_port not in {p.id for p in dst.inputs}:
            raise IRError(f"{xml_path}: edge {el.attrib} refers to an unknown port")
        edges.append(e)
    return tuple(edges)


def _parse_meta(root: ET.Element) -> dict[str, str]:
    """Flat ``tag -> value`` of ``<meta_data>`` (v10) and ``<rt_info>`` (v11) elements that carry a value."""
    meta = {}
    for section in ("meta_data", "rt_info"):
        el = root.find(section)
        if el is None:
            continue
        for item in el.iter():
            if "value" in item.attrib:
                meta[item.tag] = item.get("value")
    return meta


def _const_spec(layer: Layer, xml_path: Path) -> tuple[str, tuple[int, ...], int, int]:
    """``(element_type, shape, offset, size)`` of a Const, checked for consistency."""
    etype = layer.data.get("element_type", "")
    if etype not in ELEMENT_TYPES:
        raise IRError(f"{xml_path}: {layer.describe()} has element_type '{etype}', which ferkit cannot read "
                      f"(supported: {', '.join(ELEMENT_TYPES)})")
    try:
        shape, offset, size = parse_ints(layer.data["shape"]), int(layer.data["offset"]), int(layer.data["size"])
    except (KeyError, ValueError) as e:
        raise IRError(f"{xml_path}: {layer.describe()} lacks a valid shape/offset/size ({e})") from None
    expected = int(np.prod(shape, dtype=np.int64)) * np.dtype(ELEMENT_TYPES[etype]).itemsize
    if size != expected or offset < 0:
        raise IRError(f"{xml_path}: {layer.describe()} declares size={size} at offset {offset}, but shape "
                      f"{list(shape)} of {etype} needs {expected} bytes")
    return etype, shape, offset, size


def _check_bin(model: IRModel) -> None:
    consts = model.by_type("Const")
    if not consts:
        return
    if not model.bin_path.is_file():
        raise IRError(f"{model.bin_path}: weights file not found (needed by {model.xml_path}, "
                      f"{len(consts)} Const layers)")
    have = model.bin_path.stat().st_size
    for layer in consts:
        _, _, offset, size = _const_spec(layer, model.xml_path)
        if offset + size > have:
            raise IRError(f"{model.bin_path}: truncated or wrong weights file: {have} bytes, but "
                          f"{layer.describe()} in {model.xml_path.name} needs bytes [{offset}, {offset + size})")
