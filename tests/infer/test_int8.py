"""int8: ``ferkit export onnx --int8 --calibrate DIR`` and ``ferkit.load(..., precision="int8", calibrate=DIR)`` end to
end on a small model and packaged photos, and the agreement of the default model's int8 export with its fp32 output on
real FER+ Valid faces (calibrated on FER+ Train: the two sets never overlap)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import ferkit
from ferkit.cli.main import main
from ferkit.errors import ConfigError
from ferkit.export.quantize import calibration_files, calibration_hash
from tests._shared import FERPLUS
from tests.infer._helpers import TINY

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

EXAMPLES = Path(ferkit.__file__).parent / "resources" / "examples"


@pytest.fixture(scope="module")
def faces(tmp_path_factory) -> Path:
    """Six face-like crops from the packaged photos (shifted / scaled / grey variants), in a nested folder with a
    hidden file and a non-image that must be ignored."""
    folder = tmp_path_factory.mktemp("calib")
    (folder / "sub").mkdir()
    (folder / ".hidden.png").write_bytes(b"not read")
    (folder / "notes.txt").write_text("not an image")
    boxes = [("astronaut.jpg", (170, 50, 290, 190)), ("astronaut.jpg", (160, 40, 300, 200)),
             ("grace_hopper.jpg", (110, 40, 420, 380)), ("grace_hopper.jpg", (90, 20, 440, 400))]
    for i, (name, box) in enumerate(boxes):
        crop = Image.open(EXAMPLES / name).convert("RGB").crop(box)
        crop.save(folder / f"face{i}.png")
        crop.convert("L").save(folder / "sub" / f"face{i}_grey.png")
    return folder


def test_calibration_files_are_spread_and_hashed_by_content(faces, tmp_path):
    every = calibration_files(faces, None)
    assert len(every) == 8 and all(p.suffix == ".png" and not p.name.startswith(".") for p in every)
    four = calibration_files(faces, 4)
    assert len(four) == 4 and four[0] == every[0] and four[-1] == every[-1]  # spread over the sorted list
    copy = tmp_path / "elsewhere"
    copy.mkdir()
    for i, p in enumerate(four):
        (copy / f"{i}.png").write_bytes(p.read_bytes())
    assert calibration_hash(sorted(copy.glob("*.png"))) == calibration_hash(four)
    assert calibration_hash(four[::-1]) != calibration_hash(four)
    with pytest.raises(ConfigError, match="holds no image files"):
        calibration_files(_empty(tmp_path), 1)
    with pytest.raises(ConfigError, match="calibration folder not found"):
        calibration_files(tmp_path / "missing", 1)


def _empty(tmp_path: Path) -> Path:
    (tmp_path / "empty").mkdir(exist_ok=True)
    return tmp_path / "empty"


def test_cli_int8_export_then_load(capsys, caplog, tmp_path, tiny, tiny_ckpt, faces, photos):
    out = tmp_path / "tiny_int8.onnx"
    assert main(["export", "onnx", "--model", TINY, "--checkpoint", str(tiny_ckpt), "--out", str(out), "--int8",
                 "--calibrate", str(faces), "--calibrate-count", "5"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["precision"] == "int8" and report["calibration"]["count"] == 5
    meta = json.loads(out.with_name(out.name + ".json").read_text())
    assert meta["precision"] == "int8" and meta["quantization"]["format"] == "QDQ"
    assert meta["calibration"] == {"count": 5, "sha256": calibration_hash(calibration_files(faces, 5)),
                                   "folder": faces.name}
    assert meta["label_names"] == list(tiny.label_names) and meta["fp32_parity_max_abs_diff"] <= 1e-4
    ops = {n.op_type for n in onnx.load(str(out)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops  # the conv is quantized (QDQ around it)

    rec = ferkit.load(out, detector="none")
    assert rec.precision == "int8" and rec.backend.name == "onnx"
    fp32 = ferkit.load(TINY, checkpoint=tiny_ckpt, detector="none", device="cpu")
    images = sorted(faces.rglob("face*.png")) + [photos["astronaut"]]
    for a, b in zip(rec.predict(images), fp32.predict(images)):
        pa, pb = np.array(list(a.faces[0].scores.values())), np.array(list(b.faces[0].scores.values()))
        assert np.abs(pa - pb).max() < 0.1  # int8 of a 2-layer net on its own calibration faces: close
    assert ferkit.load(out, detector="none", precision="auto").precision == "int8"
    with pytest.raises(ConfigError, match=r"is an int8 ONNX model; precision 'fp32' is not available"):
        ferkit.load(out, detector="none", precision="fp32")
    caplog.clear()
    assert main(["-v", "predict", str(images[0]), "--model", str(out), "--detector", "none"]) == 0
    assert json.loads(capsys.readouterr().out)["faces"][0]["label"] == rec.predict(images[0]).faces[0].label
    # -v shows INFO: the line that says what runs and why
    assert any(r.getMessage().startswith("precision int8: ") for r in caplog.records)


def test_cli_int8_needs_calibration(tmp_path, capsys):
    assert main(["export", "onnx", "--model", TINY, "--out", str(tmp_path / "m.onnx"), "--int8"]) == 2
    assert "--int8 needs --calibrate DIR" in capsys.readouterr().err


def test_load_quantizes_once_and_caches(tiny_ckpt, faces, caplog):
    with caplog.at_level(logging.INFO, logger="ferkit"):
        first = ferkit.load(TINY, checkpoint=tiny_ckpt, detector="none", precision="int8", calibrate=faces,
                            calibrate_count=4)
    assert first.precision == "int8" and any("quantizing" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="ferkit"):
        again = ferkit.load(TINY, checkpoint=tiny_ckpt, detector="none", precision="int8", calibrate=faces,
                            calibrate_count=4)
    assert again.backend.path == first.backend.path
    assert not any("quantizing" in r.getMessage() for r in caplog.records)
    assert any("from the cache" in r.getMessage() for r in caplog.records)
    meta = json.loads(Path(str(first.backend.path) + ".json").read_text())
    assert meta["calibration"]["count"] == 4 and meta["precision"] == "int8"
    assert first.backend.name == "onnx"  # int8's default runtime: onnxruntime


def test_int8_file_runs_on_openvino_like_onnxruntime(tiny_ckpt, faces):
    """The same cached int8 QDQ file on OpenVINO (its own int8 kernels) gives the onnxruntime probabilities closely."""
    pytest.importorskip("openvino")
    kw = dict(checkpoint=tiny_ckpt, detector="none", precision="int8", calibrate=faces, calibrate_count=4)
    ort_rec, ov_rec = ferkit.load(TINY, **kw), ferkit.load(TINY, backend="openvino", **kw)
    assert ov_rec.backend.name == "openvino" and ov_rec.backend.precision == "int8"
    assert ov_rec.backend.path == ort_rec.backend.path
    x = torch.randn(5, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    p_ort, p_ov = (torch.softmax(r.backend.logits(x), -1) for r in (ort_rec, ov_rec))
    assert (p_ort - p_ov).abs().max() < 0.05


@pytest.mark.slow
@pytest.mark.required_in_ci
def test_default_model_int8_agrees_with_fp32_on_ferplus_valid():
    """The shipped recipe on the default model: >= 99 % top-1 agreement and max |dp| <= 0.02 on 1,000 FER+ Valid
    faces, calibrated on 256 FER+ Train faces (spread over the sorted Train folder)."""
    if not (FERPLUS / "FER2013Valid").is_dir():
        pytest.skip(f"FER+ not available at {FERPLUS}")
    from ferkit.data import build_dataset

    int8 = ferkit.load(detector="none", device="cpu", precision="int8", calibrate=FERPLUS / "FER2013Train",
                       calibrate_count=256)
    fp32 = ferkit.load(detector="none", device="cpu")
    valid = build_dataset("ferplus", FERPLUS, "val")
    x = torch.stack([fp32.preprocessor.to_tensor(np.asarray(Image.open(valid.samples[i][0]).convert("RGB")))
                     for i in range(1000)])
    p8 = torch.softmax(int8.classify(x).double(), 1)
    p32 = torch.softmax(fp32.classify(x).double(), 1)
    agree = (p8.argmax(1) == p32.argmax(1)).double().mean().item()
    max_diff = (p8 - p32).abs().max().item()
    assert agree >= 0.99, f"top-1 agreement {agree:.4f}"
    assert max_diff <= 0.02, f"max |dp| {max_diff:.4f}"


def test_a_recipe_that_selects_no_node_is_refused(tmp_path, tiny):
    from ferkit.export.onnx import export_onnx
    from ferkit.export.quantize import INT8_RECIPE, int8_recipe, quantize_onnx

    export_onnx(tiny, tmp_path / "fp32.onnx")
    batches = [np.zeros((2, 3, 224, 224), np.float32)]
    with pytest.raises(ConfigError, match="matches no node"):
        quantize_onnx(tmp_path / "fp32.onnx", tmp_path / "q.onnx", batches,
                      recipe={**INT8_RECIPE, "quantize_only": "^/no_such_layer/"})
    assert not (tmp_path / "q.onnx").exists()
    assert int8_recipe(TINY) == INT8_RECIPE and int8_recipe("poster_v2_open")["quantize_only"]


def test_graphs_onnxruntime_cannot_shape_symbolically_still_quantize(tmp_path, tiny, monkeypatch):
    """onnxruntime's symbolic shape inference asserts on some graphs (MPA-FER's reshapes): the pre-processing falls
    back to ONNX shape inference instead of failing with a bare AssertionError."""
    import onnxruntime.quantization.shape_inference as si

    from ferkit.export.onnx import export_onnx
    from ferkit.export.quantize import quantize_onnx

    real, calls = si.quant_pre_process, []

    def picky(src, dst, skip_symbolic_shape=False, **kw):
        calls.append(skip_symbolic_shape)
        if not skip_symbolic_shape:
            raise AssertionError  # what symbolic_shape_infer._infer_Reshape raises on MPA-FER
        return real(src, dst, skip_symbolic_shape=skip_symbolic_shape, **kw)

    monkeypatch.setattr(si, "quant_pre_process", picky)
    export_onnx(tiny, tmp_path / "fp32.onnx")
    x = np.random.default_rng(0).standard_normal((2, 3, 224, 224)).astype(np.float32)
    report = quantize_onnx(tmp_path / "fp32.onnx", tmp_path / "q.onnx", [x])
    assert calls == [False, True] and report["symbolic_shape_inference"] is False
    got = ort.InferenceSession(str(tmp_path / "q.onnx"), providers=["CPUExecutionProvider"]).run(None, {"images": x})[0]
    with torch.inference_mode():
        want = tiny(torch.from_numpy(x)).numpy()
    assert np.abs(got - want).max() < 0.1 * np.abs(want).max()  # a working int8 model, not garbage
