"""``POST /v1/predict/video``: a real MP4 (the astronaut photo, moving) streamed back as JSON lines."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.serve._helpers import metric

cv2 = pytest.importorskip("cv2")


def write_clip(path: Path, astronaut: bytes, fourcc: str) -> Path:
    """8 frames at 8 fps: the astronaut photo shifted a little each frame."""
    rgb = np.asarray(Image.open(io.BytesIO(astronaut)).convert("RGB"))
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 8.0, (512, 512))
    for i in range(8):
        out.write(np.ascontiguousarray(np.roll(rgb, 4 * i, axis=1)[:, :, ::-1]))
    out.release()
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory, astronaut) -> Path:
    return write_clip(tmp_path_factory.mktemp("video") / "astronaut.mp4", astronaut, "mp4v")


@pytest.fixture(scope="module")
def avi(tmp_path_factory, astronaut) -> Path:
    return write_clip(tmp_path_factory.mktemp("video") / "astronaut.avi", astronaut, "MJPG")


def lines(r) -> list[dict]:
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/x-ndjson")
    return [json.loads(x) for x in r.text.splitlines() if x.strip()]


def test_video_streams_one_record_per_frame(client, clip):
    r = client.post("/v1/predict/video?every=2", files={"file": ("clip.mp4", clip.read_bytes(), "video/mp4")})
    recs = lines(r)
    assert [x["frame"] for x in recs] == [0, 2, 4, 6]
    assert [x["timestamp"] for x in recs] == [0.0, 0.25, 0.5, 0.75]
    assert all(x["input"] == "clip.mp4" and x["error"] is None and len(x["faces"]) == 1 for x in recs)
    xs = [x["faces"][0]["box"][0] for x in recs]
    assert all(b - a > 4 for a, b in zip(xs, xs[1:]))  # the face moves right, 8 px per two frames
    assert r.headers["x-video-frames"] == "8" and r.headers["x-video-size"] == "512x512"


def test_raw_video_bytes_and_frame_cap(client, clip):
    before = client.get("/metrics").text
    r = client.post("/v1/predict/video?max_frames=3&detect=false", content=clip.read_bytes(),
                    headers={"Content-Type": "video/mp4"})
    recs = lines(r)
    assert [x["frame"] for x in recs] == [0, 1, 2] and r.headers["x-max-frames"] == "3"
    assert all(x["faces"][0]["box"] == [0.0, 0.0, 512.0, 512.0] for x in recs)
    after = client.get("/metrics").text
    name = "ferkit_video_frames_total"
    assert metric(after, name, model="poster_v2_open") - metric(before, name, model="poster_v2_open") == 3


def test_bad_videos(client, clip, astronaut):
    r = client.post("/v1/predict/video", content=b"\x00" * 5000, headers={"Content-Type": "video/mp4"})
    assert r.status_code == 415 and r.json()["error"]["type"] == "not_a_video"
    r = client.post("/v1/predict/video", content=astronaut, headers={"Content-Type": "image/jpeg"})
    assert r.status_code == 415 and r.json()["error"]["type"] == "unsupported_content_type"
    r = client.post("/v1/predict/video?every=0", content=clip.read_bytes(), headers={"Content-Type": "video/mp4"})
    assert r.status_code == 422 and "every" in r.json()["error"]["message"]
    half = clip.read_bytes()[: clip.stat().st_size // 2]  # an MP4 cut before its index: cannot be opened
    r = client.post("/v1/predict/video", content=half, headers={"Content-Type": "video/mp4"})
    assert r.status_code == 415 and r.json()["error"]["type"] == "not_a_video"


def test_truncated_video_streams_what_it_can_then_an_error(client, avi):
    half = avi.read_bytes()[: avi.stat().st_size // 2]  # MJPEG AVI cut in half: frames 0-4 are readable
    recs = lines(client.post("/v1/predict/video", files={"file": ("cut.avi", half, "video/x-msvideo")}))
    assert [x["frame"] for x in recs] == [0, 1, 2, 3, 4, 5]
    assert all(x["error"] is None and len(x["faces"]) == 1 for x in recs[:-1])
    assert recs[-1]["faces"] == [] and "video ended early: read 5 of 8 frames" in recs[-1]["error"]
    assert client.get("/healthz").status_code == 200


def test_clients_that_leave_free_their_slots(server, client, clip):
    """A client that sends a video and hangs up (before or while the answer streams) leaves no slot taken."""
    import socket
    import time

    data = clip.read_bytes()
    head = (f"POST /v1/predict/video?every=1 HTTP/1.1\r\nHost: x\r\nContent-Type: video/mp4\r\n"
            f"Content-Length: {len(data)}\r\n\r\n").encode()
    for wait in (0.0, 0.3):
        with socket.create_connection((server.host, server.port)) as s:
            s.sendall(head + data)
            time.sleep(wait)
    state = server.app.state.ferkit
    for _ in range(100):
        if state.videos == 0 and state.admission.count == 0:
            break
        time.sleep(0.05)
    assert state.videos == 0 and state.admission.count == 0
    assert client.post("/v1/predict/video?max_frames=1", content=data,
                       headers={"Content-Type": "video/mp4"}).status_code == 200
