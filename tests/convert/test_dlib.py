"""dlib's face-recognition ResNet: the .dat reader, the strict converter, DlibResNet's semantics, parity with dlib."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ferkit.convert.dlib_dat import convert_dlib_resnet, dlib_resnet_state_dict, is_dlib_dnn, read_dlib_dnn
from ferkit.errors import WeightsError
from ferkit.nn.dlib_resnet import DlibResNet, add_prev
from tests._shared import SHARED, SHARED_WEIGHTS

DAT = SHARED_WEIGHTS / "dlib_face_recognition_resnet_model_v1.dat"
FACES = SHARED / "data" / "ferplus" / "FER2013Valid"


@pytest.fixture(scope="module")
def dat() -> Path:
    if not DAT.is_file():
        pytest.skip(f"dlib model not available at {DAT}")
    return DAT


@pytest.fixture(scope="module")
def net(dat: Path):
    return read_dlib_dnn(dat)


@pytest.fixture(scope="module")
def model(dat: Path) -> DlibResNet:
    state, _ = convert_dlib_resnet(dat)
    m = DlibResNet()
    m.load_state_dict(state, strict=True)
    return m.eval()


def _chips(n: int) -> np.ndarray:
    """(n, 150, 150, 3) uint8 RGB: real FER faces upsampled to dlib's chip size."""
    from PIL import Image

    files = sorted(FACES.glob("*.png"))[:n]
    if len(files) < n:
        pytest.skip(f"need {n} face images in {FACES}")
    return np.stack([np.asarray(Image.open(f).convert("RGB").resize((150, 150), Image.BILINEAR)) for f in files])


# -- reader -----------------------------------------------------------------------------------------------------------

def test_reader_real_file(net) -> None:
    names = [layer.name for layer in net.layers]
    assert net.loss == "loss_metric_2"
    assert names.count("con_4") == 29 and names.count("affine_") == 29 and names.count("fc_2") == 1
    assert names.count("add_prev_") == 14 and names[-1] == "fc_2"
    assert len(net.layers) == 108 and net.chain.count(1) == 22  # 22 tag / skip layers in the version chain
    assert net.input.fields["nr"] == net.input.fields["nc"] == 150
    assert net.input.fields["mean"] == pytest.approx([122.782, 117.001, 104.298], abs=1e-3)
    assert net.loss_fields["margin"] == pytest.approx(0.04)
    assert net.loss_fields["distance_threshold"] == pytest.approx(0.6)
    first = net.layers[0]
    assert first.fields["num_filters"] == 32 and first.fields["stride_y"] == 2 and first.fields["pad_y"] == 0
    assert first.params.size == 32 * 3 * 7 * 7 + 32


def test_reader_rejects_truncated_and_foreign_files(dat: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.dat"
    cut.write_bytes(dat.read_bytes()[: 100_000])
    with pytest.raises(WeightsError, match="ends early"):
        read_dlib_dnn(cut)
    text = tmp_path / "notes.dat"
    text.write_text("hello, not a network")
    with pytest.raises(WeightsError, match="cut|not a dlib|version|string|integer"):
        read_dlib_dnn(text)
    assert is_dlib_dnn(dat) and not is_dlib_dnn(text)
    with pytest.raises(WeightsError, match="not found"):
        read_dlib_dnn(tmp_path / "missing.dat")


def test_reader_names_an_unsupported_layer(dat: Path, tmp_path: Path) -> None:
    data = dat.read_bytes()
    i = data.index(b"\x01\x05relu_")
    bad = tmp_path / "bad.dat"
    bad.write_bytes(data[:i] + b"\x01\x05gelu_" + data[i + 7:])
    with pytest.raises(WeightsError, match="unsupported layer type 'gelu_'"):
        read_dlib_dnn(bad)


def test_strict_conversion_catches_architecture_changes(net) -> None:
    import copy

    changed = copy.deepcopy(net)
    changed.layers[4].fields["stride_y"] = 2  # level 1, block 1, first conv: stride 1 in the real network
    with pytest.raises(WeightsError, match="stride_y"):
        dlib_resnet_state_dict(changed)
    dropped = copy.deepcopy(net)
    del dropped.layers[10]
    with pytest.raises(WeightsError, match="layer 10"):
        dlib_resnet_state_dict(dropped)
    wrong = copy.deepcopy(net)
    wrong.layers[1].params = wrong.layers[1].params[:-1]
    with pytest.raises(WeightsError, match="parameters"):
        dlib_resnet_state_dict(wrong)


def test_conversion_maps_each_tensor(net, model) -> None:
    sd = model.state_dict()
    stem = net.layers[0].params.reshape(-1)
    assert torch.equal(sd["conv1.weight"].flatten(), torch.from_numpy(stem[: 32 * 147]))
    assert torch.equal(sd["conv1.bias"], torch.from_numpy(stem[32 * 147:]))
    gamma_beta = net.layers[1].params.reshape(-1)
    assert torch.equal(sd["bn1.weight"], torch.from_numpy(gamma_beta[:32]))
    assert torch.equal(sd["bn1.bias"], torch.from_numpy(gamma_beta[32:]))
    fc = net.layers[-1].params.reshape(256, 128)  # dlib: y = x @ W (inputs x outputs)
    assert torch.equal(sd["fc.weight"], torch.from_numpy(fc.T.copy()))
    assert sum(v.numel() for v in sd.values()) == 5_614_592


# -- semantics ------------------------------------------------------------------------------------------------

def test_add_prev_zero_pads_into_the_larger_shape() -> None:
    a = torch.arange(2 * 3 * 3, dtype=torch.float32).view(1, 2, 3, 3)
    b = torch.ones(1, 1, 4, 4)
    out = add_prev(a, b)
    expected = torch.ones(1, 2, 4, 4)
    expected[:, 1] = 0
    expected[:, :, :3, :3] += a[0]
    assert out.shape == (1, 2, 4, 4) and torch.equal(out, expected)


def test_level_sides_follow_dlib_padding_rules() -> None:
    m = DlibResNet()
    sides = [f.shape[-1] for f in m.features(torch.zeros(1, 3, 150, 150))]
    assert sides == [35, 17, 8, 4, 2]  # 150 -> 72 -> 35 (pool) -> 17 -> 8 -> max(3, 4) -> max(1, 2)
    assert [f.shape[1] for f in m.features(torch.zeros(1, 3, 112, 112))] == [32, 64, 128, 256, 256]


def test_truncated_backbone_has_no_embedding() -> None:
    m = DlibResNet(num_levels=4, embedding=False)
    assert len(m.levels) == 4 and m.fc is None
    with pytest.raises(RuntimeError, match="embedding"):
        m(torch.zeros(1, 3, 150, 150))
    with pytest.raises(ValueError):
        DlibResNet(num_levels=3, embedding=True)


# -- parity with dlib -----------------------------------------------------------------------------------------

@pytest.mark.slow
def test_descriptors_match_dlib(dat: Path, model: DlibResNet) -> None:
    dlib = pytest.importorskip("dlib")
    chips = _chips(8)
    ref = dlib.face_recognition_model_v1(str(dat))
    expected = np.stack([np.asarray(ref.compute_face_descriptor(np.ascontiguousarray(c))) for c in chips])
    x = torch.from_numpy(chips).permute(0, 3, 1, 2).float()
    with torch.no_grad():
        got = model(model.preprocess(x)).double().numpy()
    assert np.abs(got - expected).max() <= 1e-5
    assert np.linalg.norm(expected, axis=1).min() > 0.5  # real descriptors, not zeros
    # and faces differ from each other much more than the conversion error
    assert np.abs(expected[0] - expected[1]).max() > 1e-2
