"""Fixtures for the inference tests: one untrained POSTER++ (non-trivial fusion and head weights) shared by the
session, a PyTorch backend built once, real photographs packaged with ferkit (no optional package, no shared data),
the packaged YuNet detector, helpers to make recognizers quickly."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

import ferkit
from ferkit.detect import create_detector
from ferkit.infer.backends import TorchBackend
from ferkit.infer.detection import make_detector
from ferkit.infer.preprocess import resolve_crop
from ferkit.infer.recognizer import Recognizer
from tests.infer._helpers import TinyFer, register_tiny

EXAMPLES = Path(ferkit.__file__).parent / "resources" / "examples"

register_tiny()


@pytest.fixture(scope="session")
def poster() -> torch.nn.Module:
    """Untrained POSTER++ whose cross-attention and head matter (gammas 0.5, head scaled so probabilities spread)."""
    torch.manual_seed(0)
    model = ferkit.create_model("poster_v2").eval()
    with torch.no_grad():
        for block in model.fusion.values():
            block.gamma1.fill_(0.5)
            block.gamma2.fill_(0.5)
        model.head.weight.mul_(100.0)
    return model


@pytest.fixture(scope="session")
def poster_ckpt(poster, tmp_path_factory) -> Path:
    return poster.save(tmp_path_factory.mktemp("ckpt") / "poster.pt")


@pytest.fixture(scope="session")
def poster_backend(poster) -> TorchBackend:
    return TorchBackend(poster, device="cpu")


@pytest.fixture(scope="session")
def tiny() -> TinyFer:
    torch.manual_seed(1)
    return TinyFer().eval()


@pytest.fixture(scope="session")
def tiny_ckpt(tiny, tmp_path_factory) -> Path:
    return tiny.save(tmp_path_factory.mktemp("ckpt") / "tiny.pt")


@pytest.fixture(scope="session")
def backend(tiny) -> TorchBackend:
    return TorchBackend(tiny, device="cpu")


@pytest.fixture(scope="session")
def make_rec(backend, request):
    """``make_rec(detector=None, name=None, crop="auto", poster=False, **kw)`` -> a Recognizer on a shared backend
    (the tiny stand-in model unless ``poster=True``); ``detector`` as ``ferkit.load`` accepts it."""

    def make(detector=None, name: str | None = None, crop="auto", poster: bool = False, **kw) -> Recognizer:
        det, det_name = make_detector(detector)
        name = name or det_name
        chosen = request.getfixturevalue("poster_backend") if poster else backend
        return Recognizer(chosen, det, detector_name=name,
                          crop=resolve_crop(crop, detector_name=name, pretrained_crop=None), **kw)

    return make


@pytest.fixture(scope="session")
def photos(tmp_path_factory) -> dict[str, Path]:
    """Real photographs from ``ferkit/resources/examples``: ``astronaut`` (512x512 RGB JPEG, one face), ``grey``
    (Grace Hopper as an 8-bit grey PNG, 512x600, one face) and ``no_face`` (the astronaut's lower half, no face)."""
    folder = tmp_path_factory.mktemp("photos")
    out = {"astronaut": folder / "astronaut.jpg", "grey": folder / "grey.png", "no_face": folder / "no_face.jpg"}
    out["astronaut"].write_bytes((EXAMPLES / "astronaut.jpg").read_bytes())
    Image.open(EXAMPLES / "grace_hopper.jpg").convert("L").save(out["grey"])
    astro = Image.open(EXAMPLES / "astronaut.jpg")
    astro.crop((0, 280, 512, 512)).save(out["no_face"], quality=95)
    return out


@pytest.fixture
def yunet():
    """YuNet with the weights that ship with ferkit."""
    pytest.importorskip("cv2")
    return create_detector("yunet")
