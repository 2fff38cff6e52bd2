"""Video files and cameras: per-frame records, sampling, streaming, annotated output, truncated / corrupt files."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

cv2 = pytest.importorskip("cv2")

FPS = 10.0


def write_video(path, n=12, size=96, photo=None, fourcc="MJPG"):
    """``n`` frames of a real photo sliding to the right, written with cv2.VideoWriter."""
    base = np.asarray(Image.fromarray(photo).resize((size, size))) if photo is not None else None
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), FPS, (size, size))
    assert w.isOpened()
    for i in range(n):
        frame = np.roll(base, 2 * i, axis=1) if base is not None else np.full((size, size, 3), 8 * i % 256, np.uint8)
        w.write(np.ascontiguousarray(frame[:, :, ::-1]))
    w.release()
    return path


@pytest.fixture(scope="module")
def astronaut():
    return pytest.importorskip("skimage.data").astronaut()


def test_frames_sampling_timestamps_and_agreement_with_images(tmp_path, make_rec, astronaut):
    path = write_video(tmp_path / "v.avi", photo=astronaut)
    rec = make_rec(batch_size=2)
    records = list(rec.predict_video(path, every=4))
    assert [r.frame for r in records] == [0, 4, 8]
    assert [r.timestamp for r in records] == pytest.approx([0.0, 0.4, 0.8])
    assert all(r.error is None and len(r.faces) == 1 and r.input == str(path) for r in records)
    # frame 4 read back with OpenCV and predicted as an image gives the same result
    cap = cv2.VideoCapture(str(path))
    for _ in range(5):
        ok, bgr = cap.read()
    cap.release()
    still = rec.predict(bgr, channel_order="bgr")
    np.testing.assert_allclose(list(records[1].faces[0].scores.values()), list(still.faces[0].scores.values()),
                               atol=1e-6)
    assert len(list(rec.predict_video(path, max_frames=2))) == 2
    assert "use predict_video()" in rec.predict(path).error  # a video given to the image API: a clear message


@pytest.mark.parametrize("workers", [0, 2])
def test_streaming_reads_only_a_batch_ahead(tmp_path, make_rec, monkeypatch, workers):
    from ferkit.infer import video

    path = write_video(tmp_path / "v.avi", n=40)
    reads = []
    original = video.VideoSource.read
    monkeypatch.setattr(video.VideoSource, "read", lambda self, decode=True: reads.append(1) or original(self, decode))
    stream = make_rec(batch_size=2, workers=workers).predict_video(path)
    first = next(stream)
    # two frames for the first batch (+ the pipeline's bounded read-ahead: max(2 * workers, batch) + 1), not the video
    assert first.frame == 0 and len(reads) <= 3 + (max(2 * workers, 2) + 1 if workers else 0)
    assert len(list(stream)) == 39


def test_annotated_output_video_has_every_frame(tmp_path, make_rec, astronaut):
    path = write_video(tmp_path / "v.avi", n=9, photo=astronaut)
    out = tmp_path / "out" / "annotated.mp4"
    records = list(make_rec(batch_size=4).predict_video(path, every=3, out=out))
    assert len(records) == 3 and out.is_file() and not list(out.parent.glob(".*partial*"))
    cap = cv2.VideoCapture(str(out))
    frames = []
    while (r := cap.read())[0]:
        frames.append(r[1])
    cap.release()
    assert len(frames) == 9 and frames[0].shape == (96, 96, 3)
    raw = cv2.VideoCapture(str(path)).read()[1]
    assert np.abs(frames[0].astype(int) - raw.astype(int)).mean() > 2  # boxes and bars were drawn


def test_truncated_and_corrupt_videos(tmp_path, make_rec):
    rec = make_rec(batch_size=4)
    full = write_video(tmp_path / "full.avi", n=30)
    data = full.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) * 6 // 10])
    records = list(rec.predict_video(cut))
    *frames, last = records
    assert frames and all(r.error is None for r in frames) and [r.frame for r in frames] == list(range(len(frames)))
    assert "ended early" in last.error and f"read {len(frames)} of 30" in last.error and last.frame == len(frames)
    mp4 = write_video(tmp_path / "v.mp4", n=10, fourcc="mp4v")
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(mp4.read_bytes()[:200])
    (tmp_path / "text.mp4").write_text("not a video")
    for p in (bad, tmp_path / "text.mp4", tmp_path / "missing.mp4"):
        (only,) = list(rec.predict_video(p))
        assert only.error and only.faces == [] and only.frame == 0
    assert "not found" in only.error


def test_camera_that_does_not_exist(make_rec):
    (only,) = list(make_rec().predict_video(97))
    assert only.input == "camera:97" and "cannot open camera 97" in only.error
    with pytest.raises(ValueError, match="every"):
        list(make_rec().predict_video(97, every=0))
