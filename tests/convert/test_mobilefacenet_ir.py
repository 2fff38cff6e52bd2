"""The OpenVINO IR reader and the importer of the author's MobileFaceNet IR (cunjian/pytorch_face_landmark).

The IR has no licence: tests read it from the shared folder and convert into memory or a tmp dir only. The reference
runtime for parity is the ``openvino`` wheel; tests that need it, the IR or the faces skip when they are absent.
"""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from ferkit.convert.mobilefacenet_ir import LICENCE, NUM_CONVS, convert_mobilefacenet_ir, is_mobilefacenet_ir
from ferkit.convert.openvino_ir import IRError, read_ir, resolve_ir_paths
from ferkit.models.poster_v2.adapter import load_mobilefacenet
from ferkit.nn.mobilefacenet import MobileFaceNet
from tests._shared import SHARED, SHARED_WEIGHTS

IR_DIR = SHARED_WEIGHTS / "cunjian_mobilefacenet_openvino"
IR_XML, IR_BIN = IR_DIR / "mobilefacenet.xml", IR_DIR / "mobilefacenet.bin"
FACES = SHARED / "data" / "ferplus" / "FER2013Valid"
N_FACES = 8
TOL = 1e-3


# ---- fixtures -----------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ir_xml() -> Path:
    if not (IR_XML.is_file() and IR_BIN.is_file()):
        pytest.skip(f"MobileFaceNet IR not available at {IR_DIR}")
    return IR_XML


@pytest.fixture(scope="module")
def converted(ir_xml) -> tuple[dict[str, torch.Tensor], dict]:
    return convert_mobilefacenet_ir(ir_xml)


@pytest.fixture(scope="module")
def model(converted) -> MobileFaceNet:
    m = MobileFaceNet().eval()
    m.load_state_dict(converted[0], strict=True)
    return m


@pytest.fixture(scope="module")
def faces() -> torch.Tensor:
    """(8, 3, 112, 112) real faces in [0, 1]: 48x48 grayscale -> RGB -> 112x112 bilinear."""
    files = sorted(FACES.glob("*.png"))[:N_FACES]
    if len(files) < N_FACES:
        pytest.skip(f"FER2013Valid faces not available at {FACES}")
    x = np.stack([np.asarray(Image.open(f).convert("RGB"), dtype=np.float32) / 255 for f in files])
    x = torch.from_numpy(x).permute(0, 3, 1, 2)
    return F.interpolate(x, size=(112, 112), mode="bilinear", align_corners=False)


# ---- building and editing IR XML ----------------------------------------------------------------------------------

def _ports(parent: ET.Element, tag: str, shapes: list[tuple[int, ...]], first_id: int, precision: str) -> None:
    if not shapes:
        return
    el = ET.SubElement(parent, tag)
    for i, shape in enumerate(shapes):
        port = ET.SubElement(el, "port", id=str(first_id + i))
        if tag == "output":
            port.set("precision", precision)
        for d in shape:
            ET.SubElement(port, "dim").text = str(d)


def new_layer(lid: int, type_: str, data: dict[str, str] | None = None, inputs=(), outputs=(),
              precision: str = "FP32") -> ET.Element:
    """A ``<layer>``; input ports are numbered 0.., output ports after them."""
    el = ET.Element("layer", id=str(lid), name=f"{type_.lower()}_{lid}", type=type_, version="opset1")
    if data is not None:
        ET.SubElement(el, "data", {k: str(v) for k, v in data.items()})
    _ports(el, "input", list(inputs), 0, precision)
    _ports(el, "output", list(outputs), len(inputs), precision)
    return el


def const_layer(lid: int, etype: str, shape: tuple[int, ...], offset: int, size: int) -> ET.Element:
    data = {"element_type": etype, "shape": ",".join(map(str, shape)), "offset": offset, "size": size}
    return new_layer(lid, "Const", data, outputs=[shape], precision=etype.replace("f", "FP"))


def add_edge(root: ET.Element, src: int, src_port: int, dst: int, dst_port: int) -> None:
    ET.SubElement(root.find("edges"), "edge", {"from-layer": str(src), "from-port": str(src_port),
                                               "to-layer": str(dst), "to-port": str(dst_port)})


def find_edge(root: ET.Element, **attrs: int) -> ET.Element:
    for e in root.find("edges"):
        if all(e.get(k.replace("_", "-")) == str(v) for k, v in attrs.items()):
            return e
    raise AssertionError(f"no edge {attrs}")


def find_layer(root: ET.Element, lid: int) -> ET.Element:
    return root.find(f"layers/layer[@id='{lid}']")


def write_ir(folder: Path, root: ET.Element, blob: bytes, name: str = "mobilefacenet") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(folder / f"{name}.xml")
    (folder / f"{name}.bin").write_bytes(blob)
    return folder / f"{name}.xml"


def tampered(tmp_path: Path, edit: Callable[[ET.Element], bytes | None]) -> Path:
    """A copy of the real IR in ``tmp_path`` after ``edit(root)``; ``edit`` may return bytes to append to the .bin."""
    root = ET.parse(IR_XML).getroot()
    extra = edit(root) or b""
    return write_ir(tmp_path / "ir", root, IR_BIN.read_bytes() + extra)


def synthetic_ir(folder: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    """Parameter (1,2,4,4) f32 -> Convolution by an f16 Const (via Convert) -> Add of an f32 Const -> Result."""
    w = (np.arange(6, dtype=np.float16).reshape(3, 2, 1, 1) - 2.5) / 4  # exact in f16
    b = np.array([0.25, -1.5, 3.0], dtype=np.float32).reshape(1, 3, 1, 1)
    blob = w.astype("<f2").tobytes() + b.astype("<f4").tobytes()
    root = ET.Element("net", name="tiny", version="11")
    layers = ET.SubElement(root, "layers")
    ET.SubElement(root, "edges")
    layers.extend([
        new_layer(0, "Parameter", {"element_type": "f32", "shape": "1,2,4,4"}, outputs=[(1, 2, 4, 4)]),
        const_layer(1, "f16", (3, 2, 1, 1), 0, 12),
        new_layer(2, "Convert", {"destination_type": "f32"}, inputs=[(3, 2, 1, 1)], outputs=[(3, 2, 1, 1)]),
        new_layer(3, "Convolution", {"strides": "1,1", "dilations": "1,1", "pads_begin": "0,0", "pads_end": "0,0",
                                     "auto_pad": "explicit"}, inputs=[(1, 2, 4, 4), (3, 2, 1, 1)],
                  outputs=[(1, 3, 4, 4)]),
        const_layer(4, "f32", (1, 3, 1, 1), 12, 12),
        new_layer(5, "Add", {"auto_broadcast": "numpy"}, inputs=[(1, 3, 4, 4), (1, 3, 1, 1)], outputs=[(1, 3, 4, 4)]),
        new_layer(6, "Result", inputs=[(1, 3, 4, 4)]),
    ])
    for edge in ((0, 0, 3, 0), (1, 0, 2, 0), (2, 1, 3, 1), (3, 2, 5, 0), (4, 0, 5, 1), (5, 2, 6, 0)):
        add_edge(root, *edge)
    return write_ir(folder, root, blob, "tiny"), w, b


# ---- reader -------------------------------------------------------------------------------------------------------

def test_reader_synthetic_ir(tmp_path):
    xml, w, b = synthetic_ir(tmp_path)
    ir = read_ir(xml)
    assert (ir.name, ir.version, len(ir.layers), len(ir.edges)) == ("tiny", 11, 7, 6)
    assert [layer.type for layer in ir.topological_order()] == [
        "Parameter", "Const", "Convert", "Convolution", "Const", "Add", "Result"]
    conv = ir.layers[3]
    assert conv.ints("strides") == (1, 1) and conv.data["auto_pad"] == "explicit"
    assert [p.shape for p in conv.inputs] == [(1, 2, 4, 4), (3, 2, 1, 1)] and conv.output_shape() == (1, 3, 4, 4)
    assert [(src.id, port) for src, port in ir.sources(5)] == [(3, 2), (4, 0)]
    assert [(dst.id, port) for dst, port in ir.consumers(3)] == [(5, 0)]
    wf, bf = ir.const(1), ir.const(4)
    assert wf.dtype == np.float16 and np.array_equal(wf, w)
    assert bf.dtype == np.float32 and np.array_equal(bf, b)


def test_synthetic_ir_is_a_real_ir(tmp_path):
    """The hand-written IR runs in OpenVINO and computes conv + bias, so the reader test reads a genuine IR."""
    ov = pytest.importorskip("openvino")
    xml, w, b = synthetic_ir(tmp_path)
    x = np.random.default_rng(0).standard_normal((1, 2, 4, 4)).astype(np.float32)
    got = ov.Core().compile_model(str(xml), "CPU")([x])[0]
    want = np.einsum("oi,bihw->bohw", w[:, :, 0, 0].astype(np.float32), x) + b
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_reader_real_ir_matches_openvino(ir_xml):
    """Every Const the reader decodes equals the one OpenVINO decodes (f16, f32 and i64)."""
    ov = pytest.importorskip("openvino")
    ir = read_ir(ir_xml)
    assert (ir.version, len(ir.layers), len(ir.edges)) == (10, 288, 299)
    ov_consts = {op.get_friendly_name(): op for op in ov.Core().read_model(str(ir_xml)).get_ops()
                 if op.get_type_name() == "Constant"}
    types = set()
    for layer in ir.by_type("Const"):
        ours = ir.const(layer.id)
        theirs = ov_consts[layer.name].get_data()
        types.add(layer.data["element_type"])
        assert ours.shape == theirs.shape, layer.name
        np.testing.assert_array_equal(ours.astype(np.float64), theirs.astype(np.float64), err_msg=layer.name)
    assert types == {"f16", "f32", "i64"}
    assert ir.const(275).tolist() == [1, -1]  # the Reshape target: batch fixed at 1 in the IR


def test_resolve_paths_accepts_xml_bin_and_folder(ir_xml):
    for path in (ir_xml, IR_BIN, IR_DIR):
        assert resolve_ir_paths(path) == (IR_XML, IR_BIN)


def test_missing_bin_names_the_file(ir_xml, tmp_path):
    (tmp_path / "mobilefacenet.xml").write_bytes(ir_xml.read_bytes())
    with pytest.raises(IRError, match=r"mobilefacenet\.bin: weights file not found"):
        read_ir(tmp_path / "mobilefacenet.xml")
    with pytest.raises(IRError, match=r"mobilefacenet\.bin: weights file not found"):
        convert_mobilefacenet_ir(tmp_path)


def test_truncated_bin_names_the_file(ir_xml, tmp_path):
    (tmp_path / "mobilefacenet.xml").write_bytes(ir_xml.read_bytes())
    (tmp_path / "mobilefacenet.bin").write_bytes(IR_BIN.read_bytes()[:1_000_000])
    with pytest.raises(IRError, match=r"mobilefacenet\.bin: truncated .* 1000000 bytes"):
        convert_mobilefacenet_ir(tmp_path / "mobilefacenet.xml")


@pytest.mark.parametrize("text, message", [
    ("this is not xml", "not valid XML"),
    ("<html><body/></html>", r"root element <html>"),
    ('<net name="old" version="7"><layers/><edges/></net>', "version '7' is not supported"),
    ('<net name="x" version="10"></net>', "no <layers> or <edges>"),
])
def test_non_ir_xml_is_refused(tmp_path, text, message):
    path = tmp_path / "model.xml"
    path.write_text(text)
    with pytest.raises(IRError, match=message) as err:
        read_ir(path)
    assert str(path) in str(err.value)
    assert not is_mobilefacenet_ir(path)


def test_missing_xml(tmp_path):
    with pytest.raises(IRError, match="IR .xml not found"):
        read_ir(tmp_path / "nothing.xml")


# ---- identification -----------------------------------------------------------------------------------------------

def test_is_mobilefacenet_ir(ir_xml, tmp_path):
    assert is_mobilefacenet_ir(ir_xml) and is_mobilefacenet_ir(IR_BIN) and is_mobilefacenet_ir(IR_DIR)
    xml, _, _ = synthetic_ir(tmp_path / "tiny")
    assert not is_mobilefacenet_ir(xml)
    assert not is_mobilefacenet_ir(tmp_path / "absent.xml")
    (tmp_path / "empty").mkdir()
    assert not is_mobilefacenet_ir(tmp_path / "empty")
    assert sum(isinstance(m, nn.Conv2d) for m in MobileFaceNet().modules()) == NUM_CONVS


# ---- conversion ---------------------------------------------------------------------------------------------------

def test_conversion_loads_strictly_and_encodes_folded_bn(converted, ir_xml):
    sd, info = converted
    own = MobileFaceNet().state_dict()
    assert list(sd) == list(own) and len(sd) == 333
    assert all(sd[k].shape == own[k].shape and sd[k].dtype == own[k].dtype for k in own)
    ir = read_ir(ir_xml)
    assert torch.equal(sd["conv1.conv.weight"], torch.from_numpy(ir.const(1).astype(np.float32)))
    assert torch.equal(sd["conv1.bn.bias"], torch.from_numpy(ir.const(3).astype(np.float32).reshape(-1)))
    assert torch.equal(sd["output_layer.linear.weight"], torch.from_numpy(ir.const(277).astype(np.float32)))
    bn2d = [k.removesuffix(".running_var") for k in sd if k.endswith("bn.running_var")]
    bn2d.remove("output_layer.bn")
    assert len(bn2d) == 49
    for p in bn2d:
        assert torch.all(sd[f"{p}.weight"] == 1) and torch.all(sd[f"{p}.running_mean"] == 0)
        assert torch.all(sd[f"{p}.running_var"] == torch.tensor(1 - 1e-5, dtype=torch.float32))
    # BatchNorm1d kept as the IR's Multiply (scale) and Add (shift)
    assert torch.equal(sd["output_layer.bn.weight"], torch.from_numpy(ir.const(281).astype(np.float32).reshape(-1)))
    assert torch.equal(sd["output_layer.bn.bias"], torch.from_numpy(ir.const(283).astype(np.float32).reshape(-1)))


def test_bn_encoding_is_exact():
    """``weight=1, mean=0, var=1-eps`` makes eval BatchNorm an exact ``x + b`` in float32."""
    bn = nn.BatchNorm2d(4).eval()
    bias = torch.randn(4)
    with torch.no_grad():
        bn.bias.copy_(bias)
        bn.running_var.fill_(1 - bn.eps)
    x = torch.randn(2, 4, 5, 5) * 30
    assert torch.equal(bn(x), x + bias[:, None, None])


def test_info(converted, ir_xml):
    _, info = converted
    assert info["format"] == "openvino_ir" and info["model"] == "mobilefacenet"
    assert info["licence"] == LICENCE and info["precision"] == "fp16"
    assert info["source_sha256"] == {"xml": hashlib.sha256(IR_XML.read_bytes()).hexdigest(),
                                     "bin": hashlib.sha256(IR_BIN.read_bytes()).hexdigest()}
    assert info["num_tensors"] == 333 and info["num_parameters"] == 1_007_248
    assert info["input_scale"] == [1.0] * 3 and info["input_mean"] == [0.0] * 3
    assert info["preprocessing_in_graph"] == [] and info["converter_meta"]["reverse_input_channels"] == "False"
    assert {k: (v["layer"], v["shape"]) for k, v in info["taps"].items()} == {
        "f3": ("395", [1, 64, 28, 28]), "f4": ("471", [1, 128, 14, 14]), "f5": ("507", [1, 512, 7, 7])}
    assert info["output"]["shape"] == [1, 136]
    assert info["folded_batchnorm"]["batchnorm2d"] == 49 == info["folded_batchnorm"]["batchnorm2d_scale_is_one"]


def test_converted_file_loads_through_the_adapter(converted, tmp_path):
    """Saved only into tmp: the existing .pth.tar loader accepts the converted weights."""
    path = tmp_path / "mobilefacenet_from_ir.pth"
    torch.save({"state_dict": converted[0]}, path)
    assert load_mobilefacenet(MobileFaceNet(), path) == {"loaded": 333}


def test_fully_connected_head_gives_the_same_weights(ir_xml, converted, tmp_path):
    def to_fc(root):
        layer = find_layer(root, 278)
        layer.set("type", "FullyConnected")
        layer.remove(layer.find("data"))
    sd, _ = convert_mobilefacenet_ir(tampered(tmp_path, to_fc))
    assert all(torch.equal(sd[k], converted[0][k]) for k in sd)


@pytest.mark.parametrize("compress", [False, True])
def test_ir_resaved_by_openvino(ir_xml, converted, tmp_path, compress):
    """``openvino.save_model`` output: precision Converts on the data path, and with ``compress_to_fp16`` 25 of the 33
    f32 PReLU slope sets stored as f16 behind Convert nodes (those come back rounded to f16, all else identical)."""
    ov = pytest.importorskip("openvino")
    ov.save_model(ov.Core().read_model(str(ir_xml)), str(tmp_path / "resaved.xml"), compress_to_fp16=compress)
    assert is_mobilefacenet_ir(tmp_path)
    sd, info = convert_mobilefacenet_ir(tmp_path / "resaved.xml")
    for k, v in converted[0].items():
        rounded = compress and k.endswith("prelu.weight") and torch.equal(sd[k], v.half().float())
        assert torch.equal(sd[k], v) or rounded, k
    assert info["precision"] == "fp16" and [c["to"] for c in info["data_path_converts"]] == ["f16", "f32"]
    assert len(read_ir(tmp_path / "resaved.xml").by_type("Convert")) == 2 + (25 if compress else 0)


def test_preprocessing_in_the_graph_is_reported(ir_xml, converted, tmp_path):
    """A Subtract(mean) -> Multiply(scale) inserted before the first conv shows up in the info, weights unchanged."""
    mean, scale = np.array([0.5, 0.25, 0.125], "<f4"), np.array([2.0, 4.0, 8.0], "<f4")
    offset = IR_BIN.stat().st_size
    img = (1, 3, 112, 112)

    def insert(root):
        root.find("layers").extend([
            const_layer(1000, "f32", (1, 3, 1, 1), offset, 12),
            new_layer(1001, "Subtract", {"auto_broadcast": "numpy"}, inputs=[img, (1, 3, 1, 1)], outputs=[img]),
            const_layer(1002, "f32", (1, 3, 1, 1), offset + 12, 12),
            new_layer(1003, "Multiply", {"auto_broadcast": "numpy"}, inputs=[img, (1, 3, 1, 1)], outputs=[img]),
        ])
        find_edge(root, from_layer=0, to_layer=2).attrib.update({"from-layer": "1003", "from-port": "2"})
        for edge in ((0, 0, 1001, 0), (1000, 0, 1001, 1), (1001, 2, 1003, 0), (1002, 0, 1003, 1)):
            add_edge(root, *edge)
        return mean.tobytes() + scale.tobytes()

    sd, info = convert_mobilefacenet_ir(tampered(tmp_path, insert))
    assert info["input_scale"] == scale.tolist() and info["input_mean"] == mean.tolist()
    assert [s["op"] for s in info["preprocessing_in_graph"]] == ["Subtract", "Multiply"]
    assert "input_mean" in info["expected_input"]
    assert all(torch.equal(sd[k], converted[0][k]) for k in sd)


# ---- strictness on tampered graphs --------------------------------------------------------------------------------

def _bypass_second_residual_unit(root):
    """Remove conv_3.model.1 (layers 46-62: conv 363 ... residual Add 373); its consumers read Add 362 instead."""
    assert find_layer(root, 62).get("name") == "373"
    gone = {str(i) for i in range(46, 63)}
    layers, edges = root.find("layers"), root.find("edges")
    for el in [el for el in layers if el.get("id") in gone]:
        layers.remove(el)
    for e in list(edges):
        if e.get("from-layer") in gone and e.get("to-layer") not in gone:
            e.attrib.update({"from-layer": "45", "from-port": "2"})
        elif e.get("from-layer") in gone or e.get("to-layer") in gone:
            edges.remove(e)


def _kernel_shape_changed(root):
    """conv1's 64x3x3x3 weights declared as 64x3x1x9 (same bytes)."""
    find_layer(root, 1).find("data").set("shape", "64,3,1,9")


def _stride_changed(root):
    find_layer(root, 14).find("data").set("strides", "2,2")


def _residual_rewired(root):
    """conv_3.model.0's residual Add reads conv_23's expand PReLU instead of the block input."""
    find_edge(root, from_layer=28, to_layer=45).set("from-layer", "18")


def _prelu_replaced(root):
    find_layer(root, 6).set("type", "Elu")


def _unused_const(root):
    root.find("layers").append(const_layer(999, "f16", (64,), 0, 128))


@pytest.mark.parametrize("edit, message", [
    (_bypass_second_residual_unit, r"does not fit ferkit's conv_3\.model\.3\.conv"),
    (_kernel_shape_changed, r"weight shape \(64, 3, 1, 9\) vs \(64, 3, 3, 3\)"),
    (_stride_changed, r"does not fit ferkit's conv_23\.conv .*strides \(2, 2\) vs \(1, 1\)"),
    (_residual_rewired, r"wiring differs at the residual add of conv_3\.model\.0"),
    (_prelu_replaced, r"Elu '337' .* is not part of the MobileFaceNet pattern"),
    (_unused_const, r"1 Const layer\(s\) not used by the conversion: Const 'const_999'"),
], ids=["conv-removed", "kernel-shape", "stride", "rewired", "unknown-op", "unused-const"])
def test_strict_conversion_refuses_tampered_graph(ir_xml, tmp_path, edit, message):
    with pytest.raises(IRError, match=message):
        convert_mobilefacenet_ir(tampered(tmp_path, edit))


# ---- real faces ---------------------------------------------------------------------------------------------------

def _openvino_outputs(xml: Path, tap_layers: list[str], x: torch.Tensor) -> list[np.ndarray]:
    """OpenVINO CPU in f32 on each face (the IR's batch is fixed at 1): [output, *taps], each (N, ...).

    The FP16 IR gives f16 tap outputs by default; their tensors are requested as f32 so that nothing is rounded."""
    ov = pytest.importorskip("openvino")
    from openvino.preprocess import PrePostProcessor

    core = ov.Core()
    m = core.read_model(str(xml))
    ops = {op.get_friendly_name(): op for op in m.get_ops()}
    m.add_outputs([ops[name].output(0) for name in tap_layers])
    ppp = PrePostProcessor(m)
    for i in range(len(m.outputs)):
        ppp.output(i).tensor().set_element_type(ov.Type.f32)
    compiled = core.compile_model(ppp.build(), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    assert str(compiled.get_property("INFERENCE_PRECISION_HINT")) == "<Type: 'float32'>"
    runs = [compiled([x[i:i + 1].numpy()]) for i in range(len(x))]
    return [np.concatenate([r[out] for r in runs]) for out in compiled.outputs]


def test_parity_with_openvino_on_real_faces(ir_xml, converted, model, faces):
    pytest.importorskip("openvino")
    taps = converted[1]["taps"]
    ref = _openvino_outputs(ir_xml, [taps[k]["layer"] for k in ("f3", "f4", "f5")], faces)
    with torch.no_grad():
        f3, f4, f5 = model(faces)
        out = model.output_layer(f5)
    report = {}
    for name, ours, theirs in zip(("output", "f3", "f4", "f5"), (out, f3, f4, f5), ref):
        assert ours.shape == theirs.shape, name
        report[name] = float(np.abs(ours.numpy() - theirs).max())
    print("max |ferkit - openvino|:", report)
    assert all(d <= TOL for d in report.values()), report
    assert float(out.std(0).mean()) > 1e-3  # the faces give different landmarks: parity is not trivial


def test_landmarks_on_real_faces_are_plausible(model, faces):
    with torch.no_grad():
        pts = model.landmarks(faces).reshape(-1, 68, 2).numpy() * 112  # [0, 1] of the crop -> pixels
    assert np.all((pts > -0.1 * 112) & (pts < 1.1 * 112))  # FER crops cut the chin: a few points sit on the edge
    for p in pts:
        size = p.max(0) - p.min(0)
        assert np.all(size > 0.6 * 112), size  # the 68 points span most of a tightly cropped face
        left_eye, right_eye, nose, mouth, chin = p[36:42].mean(0), p[42:48].mean(0), p[30], p[48:68].mean(0), p[8]
        assert left_eye[0] < nose[0] < right_eye[0] and right_eye[0] - left_eye[0] > 0.2 * 112
        assert max(left_eye[1], right_eye[1]) < nose[1] < mouth[1] < chin[1]


def test_landmarks_on_the_astronaut(model):
    """Five reference points of skimage's astronaut, read by eye (see tests/test_detect_real.py), within 8 px."""
    skimage_data = pytest.importorskip("skimage.data")
    img = skimage_data.astronaut()
    x1, y1, size = 172, 74, 103  # the author's crop: a square of 1.2 x min(w, h) around the face (181, 72, 267, 180)
    crop = torch.from_numpy(img[y1:y1 + size, x1:x1 + size].astype(np.float32) / 255).permute(2, 0, 1)[None]
    crop = F.interpolate(crop, size=(112, 112), mode="bilinear", align_corners=False)
    with torch.no_grad():
        p = model.landmarks(crop)[0].reshape(68, 2).numpy() * size + [x1, y1]
    five = np.stack([p[36:42].mean(0), p[42:48].mean(0), p[30], p[48], p[54]])
    ref = np.array([[201, 101], [245, 103], [224, 126], [204, 141], [244, 141]], dtype=float)
    assert np.all(np.linalg.norm(five - ref, axis=1) < 8), five
