"""What a new user hits with bad paths and files: outputs under files, damaged videos, transparent PNGs, modes."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ferkit.cli.main import main
from tests._shared import REPO
from tests.infer._helpers import TINY


def _face_png(tmp_path: Path) -> Path:
    path = tmp_path / "face.png"
    Image.new("RGB", (96, 96), (150, 110, 90)).save(path)
    return path


@pytest.mark.parametrize("command", ["predict", "explain"])
@pytest.mark.parametrize("where", ["at", "under"])
def test_out_at_or_under_a_file_is_one_clear_line(capsys, tmp_path, tiny_ckpt, command, where):
    blocker = tmp_path / "results.txt"
    blocker.write_text("not a folder")
    out = blocker if where == "at" else blocker / "sub"
    argv = [command, str(_face_png(tmp_path)), "--model", TINY, "--checkpoint", str(tiny_ckpt), "--detector", "none",
            "--device", "cpu", "--out", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"ferkit {command}: error: --out {out}")
    assert f"{blocker} is a file, not a folder" in err[0] and "Traceback" not in err[0]
    assert blocker.read_text() == "not a folder"


@pytest.mark.parametrize("kind", ["under_a_file", "a_folder"])
def test_records_file_under_a_file_or_at_a_folder_is_one_clear_line(capsys, tmp_path, tiny_ckpt, kind):
    (tmp_path / "f").write_text("x")
    records = tmp_path / "f" / "records.jsonl" if kind == "under_a_file" else tmp_path
    argv = ["predict", str(_face_png(tmp_path)), "--model", TINY, "--checkpoint", str(tiny_ckpt), "--detector",
            "none", "-o", str(records)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"ferkit predict: error: -o/--output {records}")
    assert ("is a folder" if kind == "a_folder" else f"{tmp_path / 'f'} is a file") in err[0]


def _damaged_mp4(path: Path) -> Path:
    """A real MP4 (mp4v, 60 frames) written with OpenCV, then bytes XOR-ed all over the middle half of its data."""
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(0)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (160, 120))
    assert writer.isOpened()
    for i in range(60):
        img = np.full((120, 160, 3), (i * 4 % 255, 80, 160), np.uint8)
        cv2.circle(img, (20 + 2 * i, 60), 15, (255, 255, 255), -1)
        writer.write((img + rng.integers(0, 30, img.shape)).astype(np.uint8))
    writer.release()
    data = bytearray(path.read_bytes())
    for k in range(len(data) // 4, 3 * len(data) // 4, 97):
        data[k] ^= 0x5A
    path.write_bytes(bytes(data))
    return path


@pytest.mark.slow
def test_damaged_mp4_reports_once_without_decoder_noise(tmp_path, tiny_ckpt):
    """In a fresh process (OpenCV reads FFmpeg's log level once per process), as a user runs it."""
    bad = _damaged_mp4(tmp_path / "bad.mp4")
    argv = ["predict", str(bad), "--model", TINY, "--checkpoint", str(tiny_ckpt), "--detector", "none",
            "--device", "cpu", "--batch-size", "16"]
    code = ("import sys\n"
            "from tests.infer._helpers import register_tiny; register_tiny()\n"
            f"from ferkit.cli.main import main; sys.exit(main({argv!r}))\n")
    env = {k: v for k, v in os.environ.items() if k != "OPENCV_FFMPEG_LOGLEVEL"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))  # `tests` importable
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    err = proc.stderr.strip().splitlines()
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert not any("@ 0x" in line or "FFMPEG" in line for line in err + proc.stdout.splitlines())
    assert len(err) <= 3, err
    assert sum(str(bad) in line for line in err) == 1  # one warning line naming the damaged file
    errors = [r for r in records if r["error"]]
    assert len(errors) == 1 and "ended early" in errors[0]["error"] and errors[0]["input"] == str(bad)


def test_transparent_png_gives_the_same_face_from_file_pil_and_array(tmp_path):
    """A real face in a PNG with alpha: file, PIL image and numpy array are one image, so one detection result."""
    pytest.importorskip("cv2")
    from ferkit.detect import create_detector
    from ferkit.image import load_image, to_rgb_uint8

    rgb = pytest.importorskip("skimage.data").astronaut()  # one face, at about (177, 66, 272, 161)
    h, w = rgb.shape[:2]
    face_hole = np.full((h, w), 255, np.uint8)
    face_hole[h // 10: h // 2, w // 3: 2 * w // 3] = 0  # the face region fully transparent
    det = create_detector("haar")
    counts = {}
    for name, alpha in {"unused_alpha": np.zeros((h, w), np.uint8), "transparent_face": face_hole,
                        "half_transparent": np.full((h, w), 128, np.uint8)}.items():
        path = tmp_path / f"{name}.png"
        Image.fromarray(np.dstack([rgb, alpha])).save(path)
        forms = [load_image(path), to_rgb_uint8(Image.open(path)), to_rgb_uint8(np.asarray(Image.open(path)))]
        for other in forms[1:]:
            np.testing.assert_array_equal(other, forms[0])
        bgra = np.asarray(Image.open(path))[:, :, [2, 1, 0, 3]]
        np.testing.assert_array_equal(to_rgb_uint8(bgra, channel_order="bgr"), forms[0])
        counts[name] = [len(det.detect(f)) for f in forms]
    assert counts == {"unused_alpha": [1, 1, 1], "transparent_face": [0, 0, 0], "half_transparent": [1, 1, 1]}


def test_exported_onnx_file_follows_the_umask(capsys, tmp_path, tiny_ckpt):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    out = tmp_path / "tiny.onnx"
    old = os.umask(0o022)
    try:
        assert main(["export", "onnx", "--model", TINY, "--checkpoint", str(tiny_ckpt), "--out", str(out),
                     "--no-check"]) == 0
    finally:
        os.umask(old)
    capsys.readouterr()
    assert stat.S_IMODE(out.stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "tiny.onnx.json").stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
