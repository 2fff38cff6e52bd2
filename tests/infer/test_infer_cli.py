"""CLI end to end through ``ferkit.cli.main.main``: predict (images, folders, videos), webcam, explain, exit codes."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from PIL import Image

import ferkit
from ferkit.cli.main import main
from tests.infer._helpers import TINY, fer_files


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.required_in_ci
def test_predict_photos_with_detector_annotations_and_a_bad_file(capsys, tmp_path, tiny_ckpt, photos):
    pytest.importorskip("cv2")
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("astronaut", "no_face"):
        (folder / photos[name].name).write_bytes(photos[name].read_bytes())
    (folder / "broken.jpg").write_text("not a JPEG")
    out = tmp_path / "out"
    code, stdout, err = run(capsys, "predict", folder, photos["grey"], "--model", TINY, "--checkpoint", tiny_ckpt,
                            "--detector", "yunet", "--out", out, "--device", "cpu")  # YuNet: packaged weights
    assert code == 1 and "1 of 4 records have errors" in err
    records = [json.loads(line) for line in stdout.splitlines()]
    assert [r["input"].rsplit("/", 1)[1] for r in records] == ["astronaut.jpg", "broken.jpg", "no_face.jpg",
                                                                "grey.png"]
    astro, broken, no_face, grey = records
    assert len(astro["faces"]) == 1 and len(grey["faces"]) == 1
    assert no_face["faces"] == [] and no_face["error"] is None
    assert "not an image" in broken["error"] and broken["faces"] == []
    assert set(astro["faces"][0]) >= {"box", "box_xywh", "score", "label", "label_score", "scores", "landmarks"}
    saved = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert saved == records
    annotated = out / "in" / "astronaut.jpg"
    assert annotated.is_file() and Image.open(annotated).size == (512, 512)
    assert (out / "grey.png").is_file() and not (out / "in" / "broken.jpg").exists()


def test_predict_csv_all_good_exits_zero(capsys, tiny_ckpt, fer2013_root):
    files = fer_files(fer2013_root, 3)
    code, stdout, _ = run(capsys, "predict", *files, "--model", TINY, "--checkpoint", tiny_ckpt, "--detector", "none",
                          "--format", "csv", "--batch-size", "2")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(stdout)))
    assert [r["input"] for r in rows] == [str(f) for f in files] and all(r["error"] == "" for r in rows)
    probs = np.array([[float(r[f"p_{n}"]) for n in ferkit.labels.DATASET_ORDERS["rafdb"]] for r in rows])
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-9)


@pytest.mark.slow
def test_predict_real_poster_checkpoint_matches_python_api(capsys, poster_ckpt, make_rec, fer2013_root):
    path = fer_files(fer2013_root, 1)[0]
    code, stdout, _ = run(capsys, "predict", path, "--model", "poster_v2", "--checkpoint", poster_ckpt,
                          "--detector", "none", "--logits")
    assert code == 0
    (record,) = [json.loads(line) for line in stdout.splitlines()]
    expected = make_rec(poster=True).predict(path).faces[0]
    assert record["faces"][0]["label"] == expected.label and "logits" in record["faces"][0]
    np.testing.assert_allclose(list(record["faces"][0]["scores"].values()), list(expected.scores.values()), atol=1e-5)


def test_predict_video_and_missing_camera(capsys, tmp_path, tiny_ckpt):
    cv2 = pytest.importorskip("cv2")
    video = tmp_path / "clip.avi"
    w = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 5.0, (64, 48))
    for i in range(6):
        w.write(np.full((48, 64, 3), 30 * i, np.uint8))
    w.release()
    code, stdout, _ = run(capsys, "predict", video, "--model", TINY, "--checkpoint", tiny_ckpt, "--detector", "none",
                          "--every", "2", "--out", tmp_path / "out")
    assert code == 0
    records = [json.loads(line) for line in stdout.splitlines()]
    assert [(r["frame"], r["timestamp"]) for r in records] == [(0, 0.0), (2, 0.4), (4, 0.8)]
    assert (tmp_path / "out" / "clip_annotated.avi").is_file()
    code, _, err = run(capsys, "webcam", "--camera", "97", "--model", TINY, "--checkpoint", tiny_ckpt)
    assert code == 1 and "cannot open camera 97" in err


def test_errors_give_exit_code_2_and_a_message(capsys, tmp_path, tiny_ckpt, poster_ckpt):
    code, _, err = run(capsys, "predict", "x.jpg", "--model", TINY, "--checkpoint", poster_ckpt, "--detector", "none")
    assert code == 2 and "checkpoint is for model 'poster_v2'" in err
    code, _, err = run(capsys, "predict", "x.jpg", "--model", TINY, "--checkpoint", tmp_path / "nope.pt",
                       "--detector", "none")
    assert code == 2 and "nope.pt" in err
    code, _, err = run(capsys, "predict", "x.jpg", "--model", TINY, "--checkpoint", tiny_ckpt,
                       "--detector", "retinaface")  # offline, not cached
    assert code == 2 and "retinaface" in err and "ferkit weights import" in err
    assert "--detector yunet" in err  # the detector that ships with ferkit is named as the way out
    code, _, err = run(capsys, "export", "onnx", "--model", TINY, "--checkpoint", tiny_ckpt, "--out", tmp_path / "m.pb")
    assert code == 2 and "must end with .onnx" in err


def test_explain_cli_writes_overlays(capsys, tmp_path, tiny_ckpt, photos):
    code, stdout, _ = run(capsys, "explain", photos["astronaut"], "--model", TINY, "--checkpoint", tiny_ckpt,
                          "--detector", "none", "--method", "gradient", "--out", tmp_path / "exp")
    assert code == 0 and "astronaut.jpg:" in stdout
    assert Image.open(tmp_path / "exp" / "astronaut_explain.png").size == (512, 512)
    assert Image.open(tmp_path / "exp" / "astronaut_face0.png").size == (3 * 224, 224)


def test_predict_out_never_overwrites_an_input(capsys, tmp_path, tiny_ckpt, fer2013_root):
    src = fer_files(fer2013_root, 1)[0]
    photo = tmp_path / "face.jpg"
    photo.write_bytes(src.read_bytes())
    before = photo.read_bytes()
    code, _, _ = run(capsys, "predict", photo, "--model", TINY, "--checkpoint", tiny_ckpt, "--detector", "none",
                     "--out", tmp_path)
    assert code == 0 and photo.read_bytes() == before
    assert (tmp_path / "face_annotated.jpg").is_file()
