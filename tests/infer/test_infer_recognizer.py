"""Recognizer on real faces: schema, agreement with an independent re-statement of the official evaluation pipeline,
batching, input forms, detectors, bad inputs, load() errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import ferkit
from ferkit.device import precision_dtype, resolve_device, resolve_precision
from ferkit.errors import CheckpointError, ConfigError
from ferkit.infer.records import Record
from tests.infer._helpers import TINY, StubDetector, fer_files

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406])
IMAGENET_STD = np.array([0.229, 0.224, 0.225])


def reference_probs(model, paths) -> np.ndarray:
    """Official POSTER++ evaluation (Resize((224, 224)) bilinear -> ToTensor -> Normalize) written with PIL and
    numpy, on the original (not BN-folded) model; softmax in float64. -> (N, C)."""
    xs = []
    for path in paths:
        img = Image.open(path).convert("RGB").resize((224, 224), Image.BILINEAR)
        xs.append(((np.asarray(img, dtype=np.float64) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD).transpose(2, 0, 1))
    with torch.no_grad():
        logits = model(torch.from_numpy(np.stack(xs)).float()).double()
    return torch.softmax(logits, -1).numpy()


@pytest.mark.parametrize("which", ["poster", "tiny"])
def test_predict_matches_official_pipeline_on_real_faces(which, fer2013_root, request, make_rec):
    model = request.getfixturevalue(which)
    files = fer_files(fer2013_root, 2)
    records = make_rec(batch_size=2, poster=which == "poster").predict(files)
    assert [r.input for r in records] == [str(f) for f in files]
    for rec, ref in zip(records, reference_probs(model, files)):
        assert rec.error is None and len(rec.faces) == 1
        f = rec.faces[0]
        assert f.box == (0.0, 0.0, 48.0, 48.0) and f.score == 1.0 and f.landmarks is None
        assert list(f.scores) == list(model.label_names)
        assert sum(f.scores.values()) == pytest.approx(1.0, abs=1e-12)
        assert f.label == max(f.scores, key=f.scores.get) and f.label_score == f.scores[f.label]
        np.testing.assert_allclose(list(f.scores.values()), ref, atol=1e-4)


def test_batch_size_does_not_change_results(fer2013_root, make_rec):
    files = fer_files(fer2013_root, 3)
    a = make_rec(batch_size=1).predict(files)
    b = make_rec(batch_size=3).predict(files)
    for ra, rb in zip(a, b):
        np.testing.assert_allclose(list(ra.faces[0].scores.values()), list(rb.faces[0].scores.values()), atol=1e-5)


def test_input_forms_single_list_folder_pil_array_bgr(fer2013_root, make_rec, tmp_path):
    rec = make_rec(logits=True)
    path = fer_files(fer2013_root, 1)[0]
    by_path = rec.predict(path)
    assert isinstance(by_path, Record) and set(by_path.faces[0].logits) == set(rec.label_names)
    rgb = np.asarray(Image.open(path).convert("RGB"))
    folder = tmp_path / "faces"
    (folder / "sub").mkdir(parents=True)
    Image.fromarray(rgb).save(folder / "sub" / "a.png")
    (folder / "notes.txt").write_text("ignored: not an image extension")
    same = [rec.predict(Image.fromarray(rgb)), rec.predict(rgb), rec.predict(np.ascontiguousarray(rgb[:, :, ::-1]),
            channel_order="bgr"), rec.predict(rgb[None])[0], rec.predict(folder)[0]]
    ref = list(rec.predict(Image.open(path).convert("RGB")).faces[0].scores.values())
    for r in same:
        np.testing.assert_allclose(list(r.faces[0].scores.values()), ref, atol=1e-6)
    assert rec.predict(folder)[0].input.endswith("a.png") and len(rec.predict([rgb, rgb])) == 2


def test_stub_detector_boxes_batching_and_explicit_boxes(photos, make_rec):
    det = StubDetector((180, 60, 270, 180), (10, 10, 60, 60))
    rec = make_rec(det, name="stub", batch_size=2)
    out = rec.predict([photos["astronaut"]] * 3)
    assert det.calls == 3 and all(len(r.faces) == 2 for r in out)
    assert out[0].faces[0].box == (180.0, 60.0, 270.0, 180.0) and out[0].faces[1].score == pytest.approx(0.8)
    again = rec.predict(photos["astronaut"], boxes=[(180, 60, 270, 180, 0.5)])
    assert det.calls == 3 and again.faces[0].score == 0.5
    np.testing.assert_allclose(list(again.faces[0].scores.values()), list(out[2].faces[0].scores.values()), atol=1e-5)
    with pytest.raises(ValueError, match="single image"):
        rec.predict([photos["astronaut"]], boxes=[(0, 0, 5, 5)])
    calls = []
    fn_rec = make_rec(lambda img: calls.append(img.shape) or [(180, 60, 270, 180)], name="callable")
    assert fn_rec.predict(photos["astronaut"]).faces[0].box == (180.0, 60.0, 270.0, 180.0) and calls == [(512, 512, 3)]


@pytest.mark.required_in_ci
def test_real_detector_on_photos_and_no_face_is_empty(photos, make_rec, yunet):
    rec = make_rec(yunet, name="yunet")
    astro, grey, no_face = rec.predict([photos["astronaut"], photos["grey"], photos["no_face"]])
    assert len(astro.faces) == 1 and len(grey.faces) == 1
    assert no_face.faces == [] and no_face.error is None
    assert len(astro.faces[0].landmarks) == 5
    assert _iou(astro.faces[0].box, (181, 72, 267, 180)) > 0.7  # the face read by eye (tests/test_detect_real.py)
    assert rec.crop["preset"] == "square"


def test_yunet_box_agrees_with_retinaface(photos, yunet, shared_weights):
    """The face box agrees with an independent detector (RetinaFace, weights from ../shared) on the same photo."""
    retina = ferkit.detect.create_detector("retinaface", weights=shared_weights / "retinaface_mobilenet0.25_Final.pth")
    astro = np.asarray(Image.open(photos["astronaut"]))
    assert _iou(yunet.detect(astro)[0].box, retina.detect(astro)[0].box) > 0.7


@pytest.mark.required_in_ci
def test_large_image_boxes_in_original_pixels(photos, make_rec, yunet, tmp_path):
    """A 6000x4000 photo: detection runs downscaled, boxes come back in the original pixels."""
    astro = Image.open(photos["astronaut"])
    small = yunet.detect(np.asarray(astro))[0].box
    canvas = Image.new("RGB", (6000, 4000), (90, 90, 90))
    canvas.paste(astro.resize((2048, 2048), Image.BILINEAR), (1500, 1000))
    big = tmp_path / "big.jpg"
    canvas.save(big, quality=90)
    rec = make_rec(yunet, name="yunet").predict(big)
    expected = np.array(small) * 4 + [1500, 1000, 1500, 1000]
    assert len(rec.faces) == 1
    np.testing.assert_allclose(rec.faces[0].box, expected, atol=0.06 * (expected[2] - expected[0]))


def test_bad_inputs_get_messages_and_the_batch_continues(fer2013_root, make_rec, tmp_path):
    good = fer_files(fer2013_root, 1)[0]
    (tmp_path / "text.jpg").write_text("this is not a JPEG")
    (tmp_path / "empty.png").write_bytes(b"")
    data = good.read_bytes()
    (tmp_path / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (tmp_path / "empty_dir").mkdir()
    bad = [tmp_path / "text.jpg", tmp_path / "empty.png", tmp_path / "truncated.jpg", tmp_path / "missing.jpg",
           tmp_path / "empty_dir", 42]
    records = make_rec().predict([good, *bad, good])
    assert len(records) == 8 and records[0].error is None and records[-1].error is None
    msgs = [r.error for r in records[1:-1]]
    assert all(m and not r.faces for m, r in zip(msgs, records[1:-1]))
    assert "not an image" in msgs[0] and "empty" in msgs[1] and "truncated" in msgs[2].lower()
    assert "not found" in msgs[3] and "no image files" in msgs[4] and "unsupported input type int" in msgs[5]


def test_grayscale_rgba_and_16bit_inputs_equal_their_8bit_rgb_versions(photos, make_rec, tmp_path):
    gray8 = np.asarray(Image.open(photos["grey"]))[::8, ::8]  # 75x64, real photo, 8-bit grey
    Image.fromarray(gray8.astype(np.uint16) * 257).save(tmp_path / "g16.png")
    rgba = np.dstack([np.repeat(gray8[..., None], 3, 2), np.full(gray8.shape, 255, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    rec = make_rec()
    ref = rec.predict(np.repeat(gray8[..., None], 3, 2))
    for x in (tmp_path / "g16.png", tmp_path / "rgba.png", gray8, gray8.astype(np.uint16) * 257, rgba):
        out = rec.predict(x)
        assert out.error is None
        np.testing.assert_allclose(list(out.faces[0].scores.values()), list(ref.faces[0].scores.values()), atol=1e-6)


def test_load_errors_name_the_problem(tiny_ckpt):
    with pytest.raises(CheckpointError, match="7-class head but num_classes=8"):
        ferkit.load(TINY, checkpoint=tiny_ckpt, detector="none", num_classes=8)
    with pytest.raises(ValueError, match="unknown face detector"):
        ferkit.load(TINY, checkpoint=tiny_ckpt, detector="dlib")
    with pytest.raises(ConfigError, match="unknown device"):
        ferkit.load(TINY, checkpoint=tiny_ckpt, detector="none", device="gpu")
    rec = ferkit.load(TINY, checkpoint=tiny_ckpt, detector="skip", device="cpu", batch_size=3)
    assert rec.detector_name == "none" and rec.crop["preset"] == "none" and rec.batch_size == 3
    with pytest.raises(FileNotFoundError):
        ferkit.load("missing.onnx")
    with pytest.raises(ValueError, match="unknown backend"):
        ferkit.load("poster_v2", backend="tensorrt")


def test_checkpoint_of_another_model_is_refused(poster_ckpt, tmp_path):
    pytest.importorskip("open_clip")
    from ferkit.clip import build_clip

    clip = tmp_path / "tiny_clip.pt"
    torch.save(build_clip("tiny", seed=1).state_dict(), clip)
    with pytest.raises(CheckpointError, match="checkpoint is for model 'poster_v2'"):
        ferkit.load("mpa_fer_vit_b16", checkpoint=poster_ckpt, detector="none", clip_arch="tiny", clip_weights=clip)


@pytest.mark.parametrize("cuda,mps,want", [(True, True, "cuda"), (False, True, "mps"), (False, False, "cpu")])
def test_auto_device_prefers_cuda_then_mps(monkeypatch, cuda, mps, want):
    import ferkit.device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(ferkit.device, "_mps_available", lambda: mps)
    assert resolve_device("auto") == torch.device(want) == resolve_device(None)


def test_device_and_precision_strings():
    assert resolve_device("cpu") == torch.device("cpu") and resolve_device(torch.device("cpu")).type == "cpu"
    with pytest.raises(ConfigError, match="unknown device"):
        resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            resolve_device("cuda:0")
    assert resolve_precision("bf16") == "bf16" and resolve_precision("float32") == resolve_precision(None) == "fp32"
    assert precision_dtype("bf16") is torch.bfloat16 and precision_dtype("half") is torch.float16
    assert precision_dtype("fp32") is None and resolve_precision(torch.bfloat16) == "bf16"
    assert resolve_precision("auto", "cpu") == "fp32"
    with pytest.raises(ConfigError, match="unknown precision"):
        resolve_precision("int8")
    with pytest.raises(ConfigError, match="needs a device"):
        resolve_precision("auto")


def test_bf16_autocast_stays_close(photos, backend, make_rec):
    """bf16 autocast really runs (the scores change) and stays within bf16's precision of fp32."""
    from ferkit.infer.backends import TorchBackend

    files = [photos["astronaut"]]
    fp32 = make_rec().predict(files[0]).faces[0].scores
    bf = TorchBackend.__new__(TorchBackend)
    bf.__dict__.update(backend.__dict__, precision="bf16")
    from ferkit.infer.preprocess import resolve_crop
    from ferkit.infer.recognizer import Recognizer

    rec = Recognizer(bf, ferkit.detect.create_detector("none"), detector_name="none",
                     crop=resolve_crop("none", detector_name="none", pretrained_crop=None))
    out = rec.predict(files[0]).faces[0].scores
    assert sum(out.values()) == pytest.approx(1.0)
    diff = np.abs(np.array(list(out.values())) - np.array(list(fp32.values())))
    assert 0 < diff.max() <= 0.01  # measured 3.7e-4 (top score 0.95)


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)
