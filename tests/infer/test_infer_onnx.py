"""ONNX export: parity with PyTorch (<= 1e-4 on logits), dynamic batch, sidecar, onnxruntime backend = same records."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import ferkit
from ferkit.cli.main import main
from ferkit.errors import CheckpointError, ConfigError
from ferkit.export.sidecar import write_sidecar
from tests.infer._helpers import TINY, fer_files

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")


def ort_logits(path, x: torch.Tensor) -> np.ndarray:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {"images": x.numpy()})[0]


def test_cli_export_sidecar_and_onnx_backend_records(capsys, tmp_path, tiny, tiny_ckpt, fer2013_root, make_rec):
    out = tmp_path / "tiny.onnx"
    assert main(["export", "onnx", "--model", TINY, "--checkpoint", str(tiny_ckpt), "--out", str(out)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["max_abs_diff"] <= 1e-4 and out.is_file()
    meta = json.loads((tmp_path / "tiny.onnx.json").read_text())
    assert meta["label_names"] == list(tiny.label_names) and meta["data_config"]["input_size"] == 224
    files = fer_files(fer2013_root, 3)
    onnx_rec = ferkit.load(out, detector="none")
    assert onnx_rec.backend.name == "onnx" and onnx_rec.label_names == tiny.label_names
    for a, b in zip(onnx_rec.predict(files), make_rec().predict(files)):
        np.testing.assert_allclose(list(a.faces[0].scores.values()), list(b.faces[0].scores.values()), atol=1e-5)
    assert main(["predict", str(files[0]), "--model", str(out), "--detector", "none"]) == 0
    assert json.loads(capsys.readouterr().out)["faces"][0]["label"] == onnx_rec.predict(files[0]).faces[0].label


def test_missing_sidecar_and_precision_are_refused(tmp_path):
    (tmp_path / "m.onnx").write_bytes(b"x")
    with pytest.raises(CheckpointError, match="no metadata file"):
        ferkit.load(tmp_path / "m.onnx", detector="none")
    write_sidecar(tmp_path / "m.onnx", {"label_names": ["anger", "happiness"], "data_config": {"input_size": 4}})
    with pytest.raises(ConfigError, match=r"is an fp32 ONNX model; precision 'bf16' is not available"):
        ferkit.load(tmp_path / "m.onnx", detector="none", precision="bf16")  # before the file is opened
    with pytest.raises(ConfigError, match=r"--int8 --calibrate DIR"):
        ferkit.load(tmp_path / "m.onnx", detector="none", precision="int8")


@pytest.mark.slow
def test_poster_v2_export_parity_on_real_faces(tmp_path, poster, poster_backend, fer2013_root):
    from ferkit.export.onnx import export_onnx

    path = tmp_path / "poster.onnx"
    report = export_onnx(poster, path)
    assert report["max_abs_diff"] <= 1e-4
    from ferkit.infer.preprocess import Preprocessor

    pre = Preprocessor(poster.data_config, {"preset": "none", "method": "resize", "margin": 0.0})
    from PIL import Image

    x = pre.batch([np.asarray(Image.open(f).convert("RGB")) for f in fer_files(fer2013_root, 3)])
    with torch.no_grad():
        ref = poster(x).numpy()
    for batch in (x, x[:1]):  # dynamic batch axis: 3 and 1 (exported with 2)
        got = ort_logits(path, batch)
        np.testing.assert_allclose(got, ref[: len(batch)], atol=1e-4, rtol=0)
    assert np.abs(ref).max() > 0.1  # the comparison is not between near-zero numbers


def test_mpa_fer_export_folds_text_features(tmp_path, fer2013_root):
    pytest.importorskip("open_clip")
    from ferkit.clip import build_clip
    from ferkit.export.onnx import export_onnx

    clip = tmp_path / "tiny_clip.pt"
    torch.save(build_clip("tiny", seed=1).state_dict(), clip)
    model = ferkit.create_model("mpa_fer_vit_b16", clip_arch="tiny", clip_weights=clip).eval()
    path = tmp_path / "mpa.onnx"
    report = export_onnx(model, path)
    assert report["max_abs_diff"] <= 1e-4
    import onnx

    graph = onnx.load(str(path)).graph
    assert [i.name for i in graph.input] == ["images"]  # no text input: class features are constants
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        ref = model(x).numpy()  # the original model, text encoder and all
    np.testing.assert_allclose(ort_logits(path, x), ref, atol=1e-4, rtol=0)
    meta = json.loads((tmp_path / "mpa.onnx.json").read_text())
    assert meta["family"] == "mpa_fer" and meta["data_config"]["interpolation"] == "bicubic"
    files = fer_files(fer2013_root, 2)
    a = ferkit.load(path, detector="none").predict(files)
    b = ferkit.load(model, detector="none", device="cpu").predict(files)
    for ra, rb in zip(a, b):
        np.testing.assert_allclose(list(ra.faces[0].scores.values()), list(rb.faces[0].scores.values()), atol=1e-5)
