"""The overlapped pipeline (decode / detect / crop in threads, classify in the caller) gives the records of the
sequential path, in order, bad items included; video tracking (``detect_every``) keeps ids and saves detector calls."""

from __future__ import annotations

import csv
import json
import random
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import ferkit
from ferkit.detect.base import Face
from ferkit.infer.pipeline import ordered_map
from ferkit.infer.records import FaceResult, Record, columns, to_rows
from ferkit.infer.tracking import IouTracker, iou
from tests.infer._helpers import TINY

EXAMPLES = Path(ferkit.__file__).parent / "resources" / "examples"

FACE_A = Image.open(EXAMPLES / "astronaut.jpg").convert("RGB").crop((150, 30, 300, 200)).resize((90, 100))
FACE_B = Image.open(EXAMPLES / "grace_hopper.jpg").convert("RGB").crop((100, 60, 420, 400)).resize((90, 96))
STEP = 8  # pixels per frame of the moving face


class CountingDetector:
    """Wraps a detector: counts calls, fails on a (nearly) black frame."""

    name = "counting"

    def __init__(self, detector):
        self.detector, self.calls = detector, 0

    def detect(self, rgb):
        self.calls += 1
        if rgb.max() < 20:
            raise ValueError("black frame: the detector failed")
        return self.detector.detect(rgb)


def canvas(t: int, black: bool = False) -> np.ndarray:
    """320x240 grey frame: face A moving right by STEP px per frame at the top, face B still at the bottom right."""
    img = Image.new("RGB", (320, 240), (0, 0, 0) if black else (120, 120, 120))
    if not black:
        img.paste(FACE_A, (10 + STEP * t, 10))
        img.paste(FACE_B, (200, 130))
    return np.asarray(img)


def write_video(path: Path, n: int, black: tuple[int, ...] = ()) -> Path:
    cv2 = pytest.importorskip("cv2")
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (320, 240))
    assert w.isOpened()
    for t in range(n):
        w.write(np.ascontiguousarray(canvas(t, t in black)[:, :, ::-1]))
    w.release()
    return path


def assert_same_records(a: list[Record], b: list[Record]) -> None:
    assert [(r.input, r.frame, r.error) for r in a] == [(r.input, r.frame, r.error) for r in b]
    for x, y in zip(a, b):
        assert len(x.faces) == len(y.faces)
        for f, g in zip(x.faces, y.faces):
            assert (f.label, f.track_id) == (g.label, g.track_id) and f.box == pytest.approx(g.box)
            np.testing.assert_allclose(list(f.scores.values()), list(g.scores.values()), rtol=0, atol=1e-6)


def test_folder_overlapped_equals_sequential_with_bad_items_in_place(make_rec, photos, yunet, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_text("not a JPEG")
    copy = tmp_path / "copy.jpg"
    copy.write_bytes(photos["astronaut"].read_bytes())
    items = [photos["astronaut"], photos["grey"], broken, photos["no_face"], tmp_path / "missing.png", copy]
    seq = make_rec(detector=yunet, name="yunet", batch_size=2, workers=0).predict(items)
    par = make_rec(detector=yunet, name="yunet", batch_size=2, workers=3).predict(items)
    assert_same_records(seq, par)
    assert [bool(r.error) for r in par] == [False, False, True, False, True, False]
    assert [len(r.faces) for r in par] == [1, 1, 0, 0, 0, 1]


def test_video_overlapped_equals_sequential_with_a_failing_frame(make_rec, yunet, tmp_path):
    path = write_video(tmp_path / "v.avi", 10, black=(3,))
    runs = {}
    for workers in (0, 2):
        det = CountingDetector(yunet)
        rec = make_rec(detector=det, name="yunet", batch_size=3, workers=workers)
        runs[workers] = list(rec.predict_video(path, every=1))
        assert det.calls == 10
    assert_same_records(runs[0], runs[2])
    assert [r.frame for r in runs[2]] == list(range(10)) and "black frame" in runs[2][3].error
    assert all(len(r.faces) == 2 for i, r in enumerate(runs[2]) if i != 3)
    assert all(f.track_id is None for r in runs[2] for f in r.faces)  # no tracking asked: no ids
    stream = make_rec(detector=yunet, name="yunet", batch_size=2, workers=2).predict_video(path)
    assert next(stream).frame == 0
    stream.close()  # the caller stops early: the pipeline's threads stop too
    assert not [t for t in threading.enumerate() if t.name.startswith("ferkit-")]


@pytest.mark.parametrize("workers", [0, 2])
def test_detect_every_tracks_faces_with_stable_ids_and_fewer_detector_calls(make_rec, yunet, tmp_path, workers):
    path = write_video(tmp_path / "moving.avi", 20)
    det = CountingDetector(yunet)
    rec = make_rec(detector=det, name="yunet", batch_size=4, workers=workers, detect_every=4)
    tracked = list(rec.predict_video(path))
    assert det.calls == 5  # frames 0, 4, 8, 12, 16
    full = list(make_rec(detector=yunet, name="yunet", batch_size=4, workers=workers).predict_video(path, track=True))
    assert len(tracked) == len(full) == 20
    ids = {}
    for t, (r, ref) in enumerate(zip(tracked, full)):
        assert r.error is None and len(r.faces) == 2, t
        for face in r.faces:
            which = "moving" if face.box[1] < 100 else "still"
            assert ids.setdefault(which, face.track_id) == face.track_id  # the same id on every frame
            truth = max(ref.faces, key=lambda f: iou(f.box, face.box))
            # carried boxes follow the face: standing still until the second detection gives the velocity
            assert iou(face.box, truth.box) > (0.75 if t >= 4 else 0.3), (t, face.box, truth.box)
    assert sorted(ids.values()) == [0, 1]
    assert {f.track_id for r in full for f in r.faces} == {0, 1}  # detect_every=1 with track=True: ids too
    assert "track_id" in tracked[1].to_dict()["faces"][0]
    assert "track_id" not in make_rec().predict(canvas(0)).to_dict()["faces"][0]


def test_track_id_in_flat_rows_only_when_asked():
    face = FaceResult(box=(0, 0, 10, 10), score=0.9, label="neutral", label_score=1.0, scores={"neutral": 1.0},
                      track_id=3)
    rec = Record("v.mp4", faces=[face], frame=0, timestamp=0.0)
    assert "track_id" not in columns(["neutral"]) and columns(["neutral"], track=True).index("track_id") == 4
    assert to_rows([rec], ["neutral"], track=True)[0]["track_id"] == 3
    assert "track_id" not in to_rows([rec], ["neutral"])[0]
    assert rec.to_dict()["faces"][0]["track_id"] == 3


def test_iou_tracker_matches_carries_and_drops():
    tr = IouTracker(max_missed=1)
    a, b = Face((0, 0, 10, 10), 0.9), Face((50, 50, 60, 60), 0.8)
    assert tr.update([a, b], 0) == [0, 1]
    # next detection: b first in the list, a moved by 2 px per step over 2 steps
    assert tr.update([b, Face((4, 0, 14, 10), 0.9)], 2) == [1, 0]
    faces, ids = tr.carry(3)  # a continues at 2 px / step, b stands still; order of the last detection
    assert ids == [1, 0] and faces[1].box == pytest.approx((6, 0, 16, 10)) and faces[0].box == b.box
    assert tr.update([b], 4) == [1]  # a missed once: kept, not carried
    assert tr.carry(5)[1] == [1]
    assert tr.update([b], 6) == [1]  # missed twice: dropped; when it reappears it is a new face
    assert tr.update([Face((10, 0, 20, 10), 0.9), b], 8) == [2, 1]


def test_ordered_map_order_bounded_read_ahead_errors_and_clean_stop():
    read = []

    def items(n):
        for i in range(n):
            read.append(i)
            yield i

    def slow_square(i):
        time.sleep(random.random() * 0.005)
        return i * i

    it = ordered_map(slow_square, items(100), 3, ahead=4)
    assert [next(it) for _ in range(5)] == [0, 1, 4, 9, 16]
    time.sleep(0.1)
    assert len(read) <= 5 + 4 + 1  # consumed + queued + one in the feeder's hand
    it.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("ferkit-")]
    assert list(ordered_map(slow_square, range(30), 2)) == [i * i for i in range(30)]
    read.clear()
    lazy = ordered_map(slow_square, items(10), 0)
    assert next(lazy) == 0 and read == [0]  # sequential: nothing read ahead

    def failing():
        yield 1
        yield 2
        raise OSError("disk gone")

    got = []
    with pytest.raises(OSError, match="disk gone"):
        for x in ordered_map(lambda i: i, failing(), 2):
            got.append(x)
    assert got == [1, 2]


def test_predict_cli_workers_and_detect_every(capsys, tmp_path, tiny_ckpt):
    from ferkit.cli.main import main

    video = write_video(tmp_path / "moving.avi", 8)
    base = ["predict", str(video), "--model", TINY, "--checkpoint", str(tiny_ckpt), "--detector", "yunet"]
    assert main(base + ["--workers", "0"]) == 0
    sequential = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert main(base + ["--workers", "2", "--detect-every", "4", "-o", str(tmp_path / "t.csv"), "--format", "csv"]) == 0
    capsys.readouterr()
    assert main(base + ["--workers", "2", "--detect-every", "4"]) == 0
    tracked = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["frame"] for r in tracked] == [r["frame"] for r in sequential] == list(range(8))
    assert all("track_id" not in f for r in sequential for f in r["faces"])
    assert {f["track_id"] for r in tracked for f in r["faces"]} == {0, 1}
    rows = list(csv.DictReader((tmp_path / "t.csv").open()))
    assert len(rows) == 16 and {r["track_id"] for r in rows} == {"0", "1"}
