"""FaceMesh: the TFLite reader, the strict converter, the PyTorch network and its parity with the LiteRT runtime."""

from __future__ import annotations

import hashlib
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from ferkit.convert.facemesh import (
    FaceMeshConversionError,
    convert_facemesh,
    facemesh_state_dict,
    is_facemesh_tflite,
)
from ferkit.convert.tflite import TFLiteFormatError, TFLiteTensor, read_tflite
from ferkit.errors import FerkitError
from ferkit.nn.facemesh import FaceMesh, same_pad
from tests._shared import SHARED, SHARED_WEIGHTS

TFLITE = SHARED_WEIGHTS / "mediapipe_face_landmark.tflite"
FACES = SHARED / "data" / "ferplus" / "FER2013Valid"
NUM_FACES = 8


@pytest.fixture(scope="module")
def tflite_path() -> Path:
    if not TFLITE.is_file():
        pytest.skip(f"FaceMesh TFLite file not available at {TFLITE}")
    return TFLITE


@pytest.fixture(scope="module")
def converted(tflite_path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    return convert_facemesh(tflite_path)


@pytest.fixture(scope="module")
def faces() -> np.ndarray:
    """(N, 192, 192, 3) float32 RGB in [0, 1]: real 48x48 grayscale FER faces, bilinearly upsampled."""
    from PIL import Image

    files = sorted(FACES.glob("*.png"))[:NUM_FACES]
    if len(files) < NUM_FACES:
        pytest.skip(f"need {NUM_FACES} face images in {FACES}")
    images = [Image.open(f).convert("RGB").resize((192, 192), Image.Resampling.BILINEAR) for f in files]
    return np.stack([np.asarray(im, dtype=np.float32) / 255.0 for im in images])


# --------------------------------------------------------------------------------------------------------------------
# TFLite reader


def test_reader_real_file(tflite_path: Path) -> None:
    model = read_tflite(tflite_path)
    assert len(model.tensors) == 327 and len(model.operators) == 210
    assert [model.tensors[i].shape for i in model.inputs] == [(1, 192, 192, 3)]
    assert sorted(model.tensors[i].shape for i in model.outputs) == [(1, 1, 1, 1), (1, 1, 1, 1404)]
    assert Counter(op.op for op in model.operators) == {
        "DEQUANTIZE": 113, "CONV_2D": 25, "PRELU": 23, "DEPTHWISE_CONV_2D": 20, "ADD": 20, "MAX_POOL_2D": 6, "PAD": 3,
    }  # fmt: skip
    stem = model.operators[2]
    assert stem.op == "CONV_2D" and stem.options["padding"] == "SAME" and stem.options["stride"] == (2, 2)
    kernel = model.tensors[stem.inputs[1]]
    dequant = next(op for op in model.operators if op.outputs == (stem.inputs[1],))
    assert dequant.op == "DEQUANTIZE"
    source = model.tensors[dequant.inputs[0]]
    assert (source.name, source.shape, source.dtype, source.data.dtype) == ("conv2d_1/Kernel", (16, 3, 3, 3),
                                                                           "float16", np.float16)
    assert kernel.data is None and kernel.dtype == "float32"  # activations / dequantised copies carry no data
    pool = next(op for op in model.operators if op.op == "MAX_POOL_2D")
    assert pool.options == {"padding": "VALID", "stride": (2, 2), "filter": (2, 2), "activation": "NONE"}
    pad = next(op for op in model.operators if op.op == "PAD")
    assert model.tensors[pad.inputs[1]].data.tolist() == [[0, 0], [0, 0], [0, 0], [0, 16]]


def test_reader_rejects_non_tflite(tmp_path: Path) -> None:
    path = tmp_path / "weights.tflite"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    with pytest.raises(TFLiteFormatError, match="not a TFLite flatbuffer") as info:
        read_tflite(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, ValueError) and isinstance(info.value, FerkitError)
    with pytest.raises(TFLiteFormatError, match="only 3 bytes"):
        read_tflite(b"abc")
    assert not is_facemesh_tflite(path) and not is_facemesh_tflite(tmp_path / "missing.tflite")


@pytest.mark.parametrize("keep", [12, 4096, 600_000])
def test_reader_rejects_truncated(tflite_path: Path, tmp_path: Path, keep: int) -> None:
    path = tmp_path / "cut.tflite"
    path.write_bytes(tflite_path.read_bytes()[:keep])
    with pytest.raises(TFLiteFormatError, match="truncated or corrupt") as info:
        read_tflite(path)
    assert str(path) in str(info.value)


def test_reader_rejects_corrupt_offset(tflite_path: Path) -> None:
    data = bytearray(tflite_path.read_bytes())
    data[0:4] = (len(data) + 100).to_bytes(4, "little")  # root table offset past the end
    with pytest.raises(TFLiteFormatError, match="truncated or corrupt"):
        read_tflite(bytes(data), source="corrupt.tflite")


def test_is_facemesh_tflite(tflite_path: Path) -> None:
    assert is_facemesh_tflite(tflite_path)


# --------------------------------------------------------------------------------------------------------------------
# Strict conversion


def test_conversion_fills_every_key(tflite_path: Path, converted: tuple[dict[str, torch.Tensor], dict]) -> None:
    state_dict, info = converted
    reference = FaceMesh().state_dict()
    assert list(state_dict) == list(reference)
    assert all(state_dict[k].shape == v.shape and state_dict[k].dtype == torch.float32 for k, v in reference.items())
    assert info == {
        "format": "tflite",
        "model": "facemesh",
        "source_sha256": hashlib.sha256(tflite_path.read_bytes()).hexdigest(),
        "licence": "Apache-2.0 (MediaPipe)",
        "num_params": 604_685,
        "input_size": 192,
    }
    # layout: the stem kernel is OHWI in the file, OIHW here; the depthwise kernel 1HWC -> (C, 1, H, W)
    tfl = read_tflite(tflite_path)
    by_name = {t.name: t.data.astype(np.float32) for t in tfl.tensors if t.data is not None}
    assert np.array_equal(state_dict["stem.conv.weight"].numpy(), by_name["conv2d_1/Kernel"].transpose(0, 3, 1, 2))
    assert np.array_equal(state_dict["stage1.0.dw.weight"].numpy(),
                          by_name["depthwise_conv2d_1/Kernel"].transpose(3, 0, 1, 2))
    assert np.array_equal(state_dict["face_head.out.bias"].numpy(), by_name["conv2d_31/Bias"])


def test_conversion_rejects_missing_layer(tflite_path: Path) -> None:
    model = FaceMesh()
    model.stage1 = nn.Sequential(model.stage1[0])  # one BlazeBlock fewer than the file
    with pytest.raises(FaceMeshConversionError, match="the module has 20 layers, the TFLite graph 21") as info:
        convert_facemesh(tflite_path, model)
    assert str(tflite_path) in str(info.value)


def test_conversion_rejects_extra_key(tflite_path: Path) -> None:
    model = FaceMesh()
    model.stage3[1].register_parameter("scale", nn.Parameter(torch.ones(64)))
    with pytest.raises(FaceMeshConversionError, match=r"keys not filled .*stage3\.1\.scale"):
        convert_facemesh(tflite_path, model)


def test_conversion_rejects_wrong_shape_and_stride(tflite_path: Path) -> None:
    model = FaceMesh()
    model.landmark_head.out = nn.Conv2d(32, 1400, 3, stride=3)
    with pytest.raises(FaceMeshConversionError, match=r"'landmark_head\.out\.weight'.*conv2d_21/Kernel"):
        convert_facemesh(tflite_path, model)
    model = FaceMesh()
    model.stage2[0].dw.stride = (1, 1)
    with pytest.raises(FaceMeshConversionError, match=r"stage2\.0\.dw: DEPTHWISE_CONV_2D .*stride \(2, 2\)"):
        convert_facemesh(tflite_path, model)


def test_conversion_rejects_unused_tensor(tflite_path: Path) -> None:
    tfl = read_tflite(tflite_path)
    tfl.tensors.append(TFLiteTensor(len(tfl.tensors), "stray/Kernel", (4,), "float16", np.zeros(4, np.float16)))
    with pytest.raises(FaceMeshConversionError, match="1 TFLite weight tensors not used: stray/Kernel"):
        facemesh_state_dict(tfl)


# --------------------------------------------------------------------------------------------------------------------
# Network


def test_same_pad_is_asymmetric() -> None:
    x = torch.ones(1, 1, 6, 7)
    y = same_pad(x, 3, 2)  # H 6 -> total 1 (0 top, 1 bottom); W 7 -> total 2 (1 left, 1 right)
    assert y.shape == (1, 1, 7, 9)
    assert y[0, 0, 0, 1:-1].eq(1).all() and y[0, 0, -1].eq(0).all() and y[0, 0, :-1, 0].eq(0).all()
    assert same_pad(x, 1, 1) is x


def test_features_at_224() -> None:
    model = FaceMesh().eval()
    with torch.no_grad():
        maps = model.features(torch.rand(2, 3, 224, 224))
        landmarks, logit = model(torch.rand(2, 3, 192, 192))
    assert [tuple(m.shape) for m in maps] == [(2, 64, 28, 28), (2, 128, 14, 14), (2, 128, 7, 7)]
    assert landmarks.shape == (2, 468, 3) and logit.shape == (2, 1)
    with pytest.raises(ValueError, match="129..320 px"):
        model(torch.rand(1, 3, 96, 96))


# --------------------------------------------------------------------------------------------------------------------
# Parity with the original runtime


def _litert_outputs(path: Path, images: np.ndarray, taps: tuple[str, ...]) -> tuple[np.ndarray, ...]:
    """Run LiteRT image by image: (landmarks (N, 468, 3), logits (N, 1), *NCHW maps of the named ``taps``)."""
    litert = pytest.importorskip("ai_edge_litert.interpreter")
    with warnings.catch_warnings():  # preserving all tensors warns that it is meant for debugging: it is here
        warnings.simplefilter("ignore", UserWarning)
        interpreter = litert.Interpreter(model_path=str(path), experimental_preserve_all_tensors=bool(taps))
    interpreter.allocate_tensors()
    index = {d["name"]: d["index"] for d in interpreter.get_tensor_details()}
    names = ("conv2d_21", "conv2d_31", *taps)  # the landmark / face-logit outputs, then the taps
    results: list[list[np.ndarray]] = [[] for _ in names]
    for image in images:
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], image[None])
        interpreter.invoke()
        for out, name in zip(results, names):
            out.append(interpreter.get_tensor(index[name])[0].copy())
    landmarks, logits, *maps = (np.stack(r) for r in results)
    return (landmarks.reshape(-1, 468, 3), logits.reshape(-1, 1), *(m.transpose(0, 3, 1, 2) for m in maps))


def test_parity_with_litert_on_real_faces(tflite_path: Path, faces: np.ndarray, converted) -> None:
    pytest.importorskip("ai_edge_litert")
    model = FaceMesh().eval()
    model.load_state_dict(converted[0])
    x = torch.from_numpy(faces).permute(0, 3, 1, 2)
    with torch.no_grad():
        landmarks, logits = model(x)
        maps = model.features(x)
    ref_landmarks, ref_logits = _litert_outputs(tflite_path, faces, ())  # default runtime (XNNPACK)
    _, _, *ref_maps = _litert_outputs(tflite_path, faces, ("p_re_lu_9", "p_re_lu_12", "p_re_lu_15"))
    for name, ours, ref in zip(("stage3", "stage4", "stage5"), maps, ref_maps):
        assert ours.shape == ref.shape, name
        error = np.abs(ours.numpy() - ref).max()
        assert error <= 1e-3, f"{name} map differs from LiteRT by {error}"
    landmark_error = np.abs(landmarks.numpy() - ref_landmarks).max()
    assert landmark_error <= 1e-2, f"landmarks differ by {landmark_error} px"  # in the 192-px input
    logit_error = np.abs(logits.numpy() - ref_logits).max()
    assert logit_error <= 1e-3, f"face logit differs by {logit_error}"
    # the outputs are real face predictions, not a degenerate match: landmarks spread over the face crop
    assert (np.ptp(ref_landmarks[..., 0], axis=1) > 60).all()
