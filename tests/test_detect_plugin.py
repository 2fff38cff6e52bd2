"""A detector added from outside ferkit: one ``register_detector`` call (here, in this test file) makes it work
everywhere a detector name is accepted — ``create_detector``, ``ferkit.load``, ``ferkit predict`` and ``ferkit
detect`` — and appear in their help and error messages."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from ferkit.cli.main import main
from ferkit.detect import (
    FaceDetector,
    create_detector,
    get_detector_entry,
    list_detectors,
    register_detector,
    unregister_detector,
)
from ferkit.detect.base import empty_result


class CentreDetector(FaceDetector):
    """Toy detector: one face, the centre half of the image, with landmarks; ``fraction`` is its only option."""

    name = "toy"
    default_score_threshold = 0.5
    has_landmarks = True

    def __init__(self, *, fraction: float = 0.5, score: float = 0.8, **kw):
        super().__init__(**kw)
        self.fraction, self.score = float(fraction), float(score)

    def _detect(self, image):
        h, w = image.shape[:2]
        if min(h, w) < 8:
            return empty_result(True)
        fw, fh = w * self.fraction, h * self.fraction
        x1, y1 = (w - fw) / 2, (h - fh) / 2
        box = np.array([[x1, y1, x1 + fw, y1 + fh]])
        lm = np.array([[[x1 + fw * u, y1 + fh * v] for u, v in
                        ((0.3, 0.4), (0.7, 0.4), (0.5, 0.6), (0.35, 0.8), (0.65, 0.8))]])
        return box, np.array([self.score]), lm


BUILDS = []


def build_toy(weights, *, device, trust_checkpoint, **kw):
    """The builder contract: explicit weights (or None), the resolved device, the trust flag, then the options."""
    BUILDS.append({"weights": weights, "device": device, "trust_checkpoint": trust_checkpoint})
    return CentreDetector(**kw)


@pytest.fixture
def toy():
    register_detector("toy", build_toy, description="test stand-in: the centre of the image", landmarks=True)
    BUILDS.clear()
    yield "toy"
    unregister_detector("toy")


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "photo.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (120, 200, 3), dtype=np.uint8)).save(path)
    return path


def test_registered_detector_is_created_by_name(toy):
    assert "toy" in list_detectors() and get_detector_entry("toy").description.startswith("test stand-in")
    det = create_detector("toy", weights="w.bin", score_threshold=0.7, fraction=0.25, trust_checkpoint=True)
    assert BUILDS == [{"weights": "w.bin", "device": "cpu", "trust_checkpoint": True}]
    faces = det.detect(np.zeros((100, 200, 3), np.uint8))
    assert len(faces) == 1 and faces[0].box == (75.0, 37.5, 125.0, 62.5) and faces[0].score == 0.8
    assert create_detector("toy", score_threshold=0.9).detect(np.zeros((100, 200, 3), np.uint8)) == []
    with pytest.raises(TypeError, match="unknown option"):
        create_detector("toy", fractoin=0.3)


def test_names_are_unique_unless_replaced(toy):
    with pytest.raises(ValueError, match="already registered"):
        register_detector("toy", build_toy)
    register_detector("toy", build_toy, description="replaced", replace=True)
    assert get_detector_entry("toy").description == "replaced" and list_detectors().count("toy") == 1
    with pytest.raises(TypeError, match="callable"):
        register_detector("broken", "not a builder")
    unregister_detector("toy")
    with pytest.raises(ValueError, match="unknown face detector 'toy'; expected one of yunet, "):
        create_detector("toy")
    register_detector("toy", build_toy)  # for the fixture's clean-up


def test_missing_weights_name_the_registered_detectors_that_need_none(toy, photo):
    from ferkit.errors import WeightsError

    with pytest.raises(WeightsError) as e:  # offline, empty cache (tests/conftest.py)
        create_detector("retinaface")
    assert "needs no download: --detector yunet or --detector haar" in str(e.value)
    assert "--detector toy" in str(e.value) and "--detector retinaface" not in str(e.value)


def test_through_ferkit_load_and_the_recognizer(toy, photo, tmp_path):
    from ferkit.infer import load
    from tests.infer._helpers import TINY, TinyFer, register_tiny

    register_tiny()
    ckpt = TinyFer().save(tmp_path / "tiny.pt")
    rec = load(TINY, checkpoint=ckpt, detector="toy", device="cpu", crop="square")
    assert rec.detector_name == "toy" and isinstance(rec.detector, CentreDetector)
    record = rec.predict(photo)
    assert record.error is None and [f.box for f in record.faces] == [(50.0, 30.0, 150.0, 90.0)]
    assert len(record.faces[0].landmarks) == 5


def test_through_the_cli(toy, photo, tmp_path, capsys):
    from tests.infer._helpers import TINY, TinyFer, register_tiny

    register_tiny()
    ckpt = TinyFer().save(tmp_path / "tiny.pt")
    code = main(["predict", str(photo), "--model", TINY, "--checkpoint", str(ckpt), "--detector", "toy", "--device",
                 "cpu"])
    out = capsys.readouterr().out
    assert code == 0
    assert json.loads(out)["faces"][0]["box"] == [50.0, 30.0, 150.0, 90.0]
    assert main(["detect", str(photo), "--detector", "toy", "--option", "fraction=0.25", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["faces"][0]["box"] == [75.0, 45.0, 125.0, 75.0]
    for command in ("predict", "detect"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert "mtcnn, none, toy" in " ".join(capsys.readouterr().out.split())  # the help lists the registry


def test_registering_the_built_ins_imports_no_heavy_library():
    code = ("import sys, ferkit.detect as d; d.list_detectors(); d.get_detector_entry('retinaface'); "
            "print([m for m in ('torch', 'cv2', 'timm') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_plugin_file_adds_a_detector_to_the_cli(photo, tmp_path, capsys):
    plugin = tmp_path / "ferkit_test_corner_detector.py"
    plugin.write_text(
        "from ferkit.detect import register_detector\n"
        "from ferkit.detect.whole import WholeImageDetector\n\n\n"
        "def build(weights, *, device, trust_checkpoint, **kw):\n"
        "    return WholeImageDetector(**kw)\n\n\n"
        "register_detector('corner', build, description='the whole image, from a plugin file')\n")
    try:
        assert main(["detect", str(photo), "--plugin", str(plugin), "--detector", "corner", "--json"]) == 0
        assert json.loads(capsys.readouterr().out)[0]["faces"][0]["box"] == [0.0, 0.0, 200.0, 120.0]
    finally:
        sys.modules.pop(plugin.stem, None)
        if "corner" in list_detectors():
            unregister_detector("corner")
