"""``ferkit detect`` on a real photo with the real RetinaFace weights."""

import json

import numpy as np
import pytest
from PIL import Image

from ferkit.cli.main import main

skimage_data = pytest.importorskip("skimage.data")


def test_detect_json_and_crops(tmp_path, capsys, shared_weights):
    img = tmp_path / "astronaut.png"
    Image.fromarray(skimage_data.astronaut()).save(img)
    (tmp_path / "broken.jpg").write_bytes(b"no image")
    code = main(["detect", str(img), str(tmp_path / "broken.jpg"), "--weights",
                 str(shared_weights / "retinaface_mobilenet0.25_Final.pth"), "--json", "--crops", str(tmp_path / "c"),
                 "--crop", "rafdb_aligned", "--size", "112", "--max-side", "320"])
    out = capsys.readouterr()
    assert code == 1 and "broken.jpg" in out.err  # the bad file is reported, the good one still processed
    result = json.loads(out.out)
    assert len(result) == 1 and len(result[0]["faces"]) == 1
    x1, y1, x2, y2 = result[0]["faces"][0]["box"]
    assert 170 < x1 < 190 and 250 < x2 < 280 and 45 < y1 < 80 and 165 < y2 < 190
    crop = np.asarray(Image.open(tmp_path / "c" / "astronaut_0.png"))
    assert crop.shape == (112, 112, 3)


def test_detect_unknown_option_and_offline_weights(tmp_path, capsys):
    img = tmp_path / "x.png"
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(img)
    assert main(["detect", str(img), "--detector", "none"]) == 0
    assert "1 face(s)" in capsys.readouterr().out
    assert main(["detect", str(img), "--detector", "retinaface"]) == 2  # offline, empty cache
    assert "ferkit weights import" in capsys.readouterr().err
    assert main(["detect", str(img), "--detector", "haar", "--option", "min_neighbours=3"]) == 2
    assert "unknown option" in capsys.readouterr().err
