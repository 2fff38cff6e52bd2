"""Result schema: nested records, flat rows, JSON / JSONL / CSV writers (no model needed)."""

from __future__ import annotations

import csv
import io
import json

import pytest

from ferkit.infer.records import FaceResult, Record, columns, to_rows
from ferkit.infer.writers import RecordWriter, dumps

LABELS = ("neutral", "happiness", "sadness")


def face(box=(10, 20, 50, 80), probs=(0.2, 0.7, 0.1), landmarks=None, logits=None):
    scores = dict(zip(LABELS, probs))
    top = max(scores, key=scores.get)
    return FaceResult(box=box, score=0.95, label=top, label_score=scores[top], scores=scores, landmarks=landmarks,
                      logits=logits)


def test_face_to_dict_has_both_box_forms_and_schema_keys():
    d = face(landmarks=[[1, 2], [3, 4], [5, 6], [7, 8], [9, 10]]).to_dict()
    assert list(d) == ["box", "box_xywh", "score", "label", "label_score", "scores", "landmarks"]
    assert d["box"] == [10, 20, 50, 80] and d["box_xywh"] == [10, 20, 40, 60]
    assert d["label"] == "happiness" and d["label_score"] == 0.7
    assert d["landmarks"][4] == [9, 10]
    assert "logits" in face(logits=dict(zip(LABELS, (1.0, 2.0, 3.0)))).to_dict()


def test_record_to_dict_image_and_video_forms():
    img = Record("a.jpg", [face()]).to_dict()
    assert list(img) == ["input", "faces", "error"] and img["error"] is None
    vid = Record("v.mp4", [], frame=3, timestamp=0.1).to_dict()
    assert list(vid) == ["input", "frame", "timestamp", "faces", "error"] and vid["faces"] == []
    json.dumps(img), json.dumps(vid)  # JSON-serialisable


def test_rows_one_per_face_and_one_for_faceless_or_failed_inputs():
    recs = [Record("two.jpg", [face(), face(box=(0, 0, 5, 5))]), Record("none.jpg"),
            Record("bad.jpg", error="not an image")]
    rows = to_rows(recs, LABELS)
    assert [r["input"] for r in rows] == ["two.jpg", "two.jpg", "none.jpg", "bad.jpg"]
    assert [r["face"] for r in rows] == [0, 1, None, None]
    assert rows[0]["p_happiness"] == 0.7 and rows[0]["w"] == 40 and rows[0]["lm0_x"] is None
    assert rows[3]["error"] == "not an image" and rows[2]["label"] is None
    assert all(list(r) == columns(LABELS) for r in rows)


def test_csv_and_jsonl_round_trip():
    recs = [Record("a.jpg", [face()]), Record("b.jpg", error="broken")]
    table = list(csv.DictReader(io.StringIO(dumps(recs, "csv", LABELS))))
    assert len(table) == 2 and table[0]["label"] == "happiness" and table[1]["error"] == "broken"
    assert float(table[0]["p_neutral"]) + float(table[0]["p_happiness"]) + float(table[0]["p_sadness"]) == \
        pytest.approx(1.0)
    lines = [json.loads(x) for x in dumps(recs, "jsonl", LABELS).splitlines()]
    assert lines == [r.to_dict() for r in recs]
    assert json.loads(dumps(recs, "json", LABELS)) == [r.to_dict() for r in recs]
    assert json.loads(dumps([], "json", LABELS)) == []
    flat = [json.loads(x) for x in dumps(recs, "jsonl", LABELS, flat=True).splitlines()]
    assert flat == to_rows(recs, LABELS)


def test_file_writer_is_atomic(tmp_path):
    path = tmp_path / "sub" / "out.jsonl"
    w = RecordWriter(path, "jsonl", LABELS)
    w.write(Record("a.jpg"))
    assert not path.exists()  # only the partial file exists while writing
    w.close()
    assert json.loads(path.read_text())["input"] == "a.jpg"
    with pytest.raises(RuntimeError), RecordWriter(tmp_path / "x.csv", "csv", LABELS) as w2:
        w2.write(Record("a.jpg"))
        raise RuntimeError("crash")
    assert not (tmp_path / "x.csv").exists() and (tmp_path / ".x.csv.partial").exists()
    with pytest.raises(ValueError, match="unknown format"):
        RecordWriter(None, "xml", LABELS)
