"""Random-weight output is marked wherever it travels: records, annotated images, ONNX sidecars; and it is seeded."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import ferkit
from ferkit.infer.draw import annotate
from ferkit.infer.records import FaceResult, Record
from tests.infer._helpers import TINY

FACE = FaceResult(box=(20, 20, 80, 80), score=0.9, label="happiness", label_score=0.5,
                  scores={"happiness": 0.5, "neutral": 0.5})


def test_untrained_flag_from_create_model(poster_ckpt: Path) -> None:
    assert ferkit.create_model(TINY).untrained is True
    assert ferkit.create_model("poster_v2", checkpoint=poster_ckpt).untrained is False
    assert ferkit.create_model("poster_v2", checkpoint=poster_ckpt, reset_head=True,
                               label_names=["happiness", "neutral", "anger"]).untrained is True


def test_records_carry_the_mark() -> None:
    assert Record("a.jpg", faces=[FACE], untrained=True).to_dict()["untrained"] is True
    assert "untrained" not in Record("a.jpg", faces=[FACE]).to_dict()


def test_banner_on_annotated_images() -> None:
    img = np.full((200, 300, 3), 255, np.uint8)
    plain, marked = annotate(img, [FACE]), annotate(img, [FACE], untrained=True)
    top = marked[:8, 150:]  # right half of the top rows: the banner, far from the face box
    assert (top[..., 0] > 150).mean() > 0.5 and (top[..., 1] < 80).mean() > 0.5  # red
    assert (plain[:8, 150:] == 255).all()


def test_recognizer_marks_untrained_models_and_is_seeded() -> None:
    rgb = np.random.default_rng(0).integers(0, 255, (120, 120, 3), dtype=np.uint8)
    runs = []
    for _ in range(2):
        rec = ferkit.load(TINY, detector="none")
        r = rec.predict(rgb)
        assert r.untrained is True and r.to_dict()["untrained"] is True
        runs.append(r.faces[0].scores)
    assert runs[0] == runs[1]  # the same random weights on every run


def test_onnx_sidecar_says_untrained(tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from ferkit.export.onnx import export_onnx

    model = ferkit.create_model(TINY).eval()
    report = export_onnx(model, tmp_path / "tiny.onnx")
    assert json.loads(Path(report["sidecar"]).read_text())["untrained"] is True
    rec = ferkit.load(str(tmp_path / "tiny.onnx"), detector="none")
    assert rec.predict(np.zeros((32, 32, 3), np.uint8)).untrained is True
    trained = ferkit.create_model(TINY, checkpoint=model.checkpoint_dict()).eval()
    report = export_onnx(trained, tmp_path / "trained.onnx")
    assert json.loads(Path(report["sidecar"]).read_text())["untrained"] is False
    torch.testing.assert_close(trained(torch.zeros(1, 3, 224, 224)), model(torch.zeros(1, 3, 224, 224)))
