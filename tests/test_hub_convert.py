"""`ferkit weights import` of the open streams' foreign formats: recognised, verified, converted, recorded."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ferkit.cli.main import main as cli
from ferkit.convert import detect_format
from ferkit.errors import WeightsError
from ferkit.hub import ASSETS, cached_path, import_weights
from tests._shared import SHARED_WEIGHTS

FILES = {"dlib_resnet": "dlib_face_recognition_resnet_model_v1.dat", "facemesh": "mediapipe_face_landmark.tflite",
         "mobilefacenet_ir": "cunjian_mobilefacenet_openvino/mobilefacenet.xml",
         "mobilefacenet_ir_bin": "cunjian_mobilefacenet_openvino/mobilefacenet.bin"}


@pytest.fixture(scope="module")
def shared() -> Path:
    if not all((SHARED_WEIGHTS / f).is_file() for f in FILES.values()):
        pytest.skip(f"stream weight files not available in {SHARED_WEIGHTS}")
    return SHARED_WEIGHTS


def test_registry_matches_the_shared_files(shared: Path) -> None:
    sums = dict(line.split()[::-1] for line in (shared / "SHA256SUMS").read_text().splitlines() if line)
    for name, rel in FILES.items():
        assert ASSETS[name].sha256 == sums[rel] and ASSETS[name].size == (shared / rel).stat().st_size


def test_formats_are_recognised_from_content(shared: Path, tmp_path: Path) -> None:
    assert detect_format(shared / FILES["dlib_resnet"]) == "dlib_dat"
    assert detect_format(shared / FILES["facemesh"]) == "facemesh_tflite"
    assert detect_format(shared / "cunjian_mobilefacenet_openvino") == "mobilefacenet_ir"
    renamed = tmp_path / "weights.bin"  # the name does not matter, the bytes do
    shutil.copy(shared / FILES["facemesh"], renamed)
    assert detect_format(renamed) == "facemesh_tflite"
    assert detect_format(shared / "face_detection_yunet_2023mar.onnx") is None


def test_import_converts_and_records(shared: Path, tmp_path: Path, capsys) -> None:
    assert cli(["weights", "--cache-dir", str(tmp_path), "import", str(shared / FILES["facemesh"])]) == 0
    assert "imported facemesh (verified)" in capsys.readouterr().out
    rec = json.loads(Path(str(cached_path("facemesh", tmp_path)) + ".json").read_text())
    assert rec["format"] == "facemesh_tflite" and rec["converts_to"] == "facemesh" and rec["num_params"] == 604685
    assert rec["licence"].startswith("Apache-2.0") and rec["sha256"] == ASSETS["facemesh"].sha256


def test_ir_folder_imports_both_files(shared: Path, tmp_path: Path) -> None:
    dest = import_weights(shared / "cunjian_mobilefacenet_openvino", cache_dir=tmp_path)
    assert dest.name == "mobilefacenet.xml" and dest.with_name("mobilefacenet.bin").is_file()
    assert cached_path("mobilefacenet_ir_bin", tmp_path).is_file()


def test_wrong_content_under_a_known_name_is_refused(shared: Path, tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="SHA-256|bytes"):
        import_weights(shared / FILES["facemesh"], "dlib_resnet", cache_dir=tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(WeightsError, match="folder"):
        import_weights(empty, cache_dir=tmp_path)
    assert not cached_path("dlib_resnet", tmp_path).exists()


def test_streams_load_by_asset_name(shared: Path, tmp_path: Path, monkeypatch) -> None:
    import ferkit

    monkeypatch.setenv("FERKIT_HOME", str(tmp_path))
    with pytest.raises(WeightsError, match="ferkit weights import"):
        ferkit.create_model("poster_v2_open", embed_dim=64, vit_heads=4, landmark_weights="facemesh")
    import_weights(shared / FILES["facemesh"])
    model = ferkit.create_model("poster_v2_open", embed_dim=64, vit_heads=4, landmark_weights="facemesh")
    assert float(model.landmark_net.net.stem.conv.weight.abs().sum()) > 0
