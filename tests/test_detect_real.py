"""Real detectors on real photographs (scikit-image samples, FER2013 faces) with the real public weights.

The astronaut reference (Eileen Collins in ``skimage.data.astronaut()``, 512x512) was read by eye on a 4x zoom with a
10-pixel grid: face from hairline to chin and cheek to cheek (181, 72, 267, 180); left eye (201, 101), right eye
(245, 103), nose tip (224, 126), mouth corners (204, 141) and (244, 141).
"""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests._shared import FER2013, SHARED_WEIGHTS

skimage_data = pytest.importorskip("skimage.data")
pytest.importorskip("cv2")

from ferkit.detect import create_detector, list_detectors  # noqa: E402

ASTRONAUT_FACE = (181, 72, 267, 180)
ASTRONAUT_LANDMARKS = np.array([[201, 101], [245, 103], [224, 126], [204, 141], [244, 141]], dtype=float)
NEURAL = ("yunet", "retinaface", "mtcnn")
REAL = (*NEURAL, "haar")


def iou(a, b):
    x1, y1, x2, y2 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def _weights(name):
    w = SHARED_WEIGHTS
    return {"yunet": w / "face_detection_yunet_2023mar.onnx", "retinaface": w / "retinaface_mobilenet0.25_Final.pth",
            "mtcnn": w, "haar": None}[name]


@pytest.fixture(scope="module")
def detectors():
    if not SHARED_WEIGHTS.is_dir():
        pytest.skip(f"shared weights not available at {SHARED_WEIGHTS}")
    return {n: create_detector(n, weights=_weights(n)) for n in REAL}


@pytest.fixture(scope="module")
def astronaut():
    return skimage_data.astronaut()


@pytest.fixture(scope="module")
def astronaut_faces(detectors, astronaut):
    return {n: d.detect(astronaut) for n, d in detectors.items()}


def test_registry_lists_all_detectors():
    assert list_detectors()[:5] == ["yunet", "haar", "retinaface", "mtcnn", "none"]  # built-ins, by module


@pytest.mark.parametrize("name", REAL)
def test_finds_the_astronaut_face(astronaut_faces, name):
    faces = astronaut_faces[name]
    assert len(faces) == 1, [f.box for f in faces]
    assert iou(faces[0].box, ASTRONAUT_FACE) > 0.6
    assert 0.0 < faces[0].score <= 1.0


@pytest.mark.parametrize("name", NEURAL)
def test_landmarks_inside_the_box_in_the_right_order(astronaut_faces, name):
    face = astronaut_faces[name][0]
    lm = face.landmarks
    assert lm.shape == (5, 2)
    x1, y1, x2, y2 = face.box
    assert ((lm[:, 0] > x1) & (lm[:, 0] < x2) & (lm[:, 1] > y1) & (lm[:, 1] < y2)).all()
    assert lm[0, 0] < lm[2, 0] < lm[1, 0]  # left eye, nose, right eye from left to right
    assert lm[3, 0] < lm[4, 0] and lm[3, 1] > lm[0, 1] and lm[4, 1] > lm[1, 1]  # mouth corners below the eyes
    eye_dist = np.linalg.norm(ASTRONAUT_LANDMARKS[1] - ASTRONAUT_LANDMARKS[0])
    err = np.linalg.norm(lm - ASTRONAUT_LANDMARKS, axis=1)
    assert err.max() < 0.2 * eye_dist, err


def test_detectors_agree(astronaut_faces):
    boxes = {n: astronaut_faces[n][0].box for n in REAL}
    for a in REAL:
        for b in REAL:
            assert iou(boxes[a], boxes[b]) > 0.65, (a, b, boxes[a], boxes[b])
    lms = [astronaut_faces[n][0].landmarks for n in NEURAL]
    for i in range(3):
        for j in range(i):
            assert np.linalg.norm(lms[i] - lms[j], axis=1).max() < 8.0


def test_second_real_photo_cameraman(detectors):
    camera = skimage_data.camera()  # grayscale (512, 512): the man's face is near (194-260, 113-200)
    for name in NEURAL:
        faces = detectors[name].detect(camera)
        assert len(faces) >= 1 and iou(faces[0].box, (196, 115, 258, 198)) > 0.5, (name, faces)


@pytest.mark.parametrize("sample", ["rocket", "coffee"])
@pytest.mark.parametrize("name", REAL)
def test_no_face_in_face_free_photos(detectors, name, sample):
    photo = Image.fromarray(getattr(skimage_data, sample)())
    photo = np.asarray(photo.resize((photo.width * 2 // 3, photo.height * 2 // 3), Image.BILINEAR))  # test speed
    assert detectors[name].detect(photo) == []


@pytest.mark.parametrize("name, max_side", [("yunet", 1024), ("retinaface", 640)])
def test_boxes_in_original_pixels_for_a_4x_upscaled_image(astronaut, astronaut_faces, name, max_side):
    from ferkit.image import resize_max_side

    big = np.asarray(Image.fromarray(astronaut).resize((2048, 2048), Image.BILINEAR))
    det = create_detector(name, weights=_weights(name), max_side=max_side)
    faces = det.detect(big)
    # it is the astronaut's face, 4 times larger than in the 512x512 original
    ref = np.array(astronaut_faces[name][0].box) * 4
    assert len(faces) == 1 and iou(faces[0].box, ref) > 0.8, (name, faces[0].box, ref)
    eye_dist = 4 * np.linalg.norm(ASTRONAUT_LANDMARKS[1] - ASTRONAUT_LANDMARKS[0])
    assert np.linalg.norm(faces[0].landmarks - 4 * ASTRONAUT_LANDMARKS, axis=1).max() < 0.2 * eye_dist
    if name == "yunet":  # exact mapping: the same detector on the image it saw internally, coordinates scaled back
        small, _ = resize_max_side(big, max_side)
        direct = create_detector(name, weights=_weights(name), max_side=None).detect(small)
        np.testing.assert_allclose(faces[0].box, np.array(direct[0].box) * 2048 / max_side, rtol=1e-5)
        np.testing.assert_allclose(faces[0].landmarks, direct[0].landmarks * 2048 / max_side, rtol=1e-5)


@pytest.mark.parametrize("form", ["gray", "rgba", "uint16", "float", "bgr"])
def test_other_image_forms(detectors, astronaut, form):
    det = detectors["yunet"]
    img, kw = astronaut, {}
    if form == "gray":
        img = np.asarray(Image.fromarray(astronaut).convert("L"))
    elif form == "rgba":
        img = np.dstack([astronaut, np.full(astronaut.shape[:2], 255, np.uint8)])
    elif form == "uint16":
        img = astronaut.astype(np.uint16) * 257
    elif form == "float":
        img = astronaut / 255.0
    else:
        img, kw = astronaut[:, :, ::-1], {"channel_order": "bgr"}
    faces = det.detect(img, **kw)
    assert len(faces) == 1 and iou(faces[0].box, ASTRONAUT_FACE) > 0.6


def test_none_detector_returns_the_whole_image():
    det = create_detector("none")
    faces = det.detect(np.zeros((30, 40), np.uint8))
    assert len(faces) == 1 and faces[0].box == (0.0, 0.0, 40.0, 30.0) and faces[0].score == 1.0
    assert faces[0].landmarks is None


def test_detect_batch_continues_past_a_bad_item(detectors, astronaut):
    out = detectors["haar"].detect_batch([astronaut, np.zeros((2, 2, 7)), skimage_data.rocket()], skip_errors=True)
    assert len(out[0]) == 1 and out[1] is None and out[2] == []
    with pytest.raises(ValueError, match="image 1"):
        detectors["haar"].detect_batch([astronaut, np.zeros((2, 2, 7))])


def _fer_faces(n_per_class=1):
    files = []
    for cls in sorted(p.name for p in (FER2013 / "val").iterdir()):
        files += sorted((FER2013 / "val" / cls).glob("*.jpg"))[:n_per_class]
    return files


def _upscaled(path: Path, factor=4, pad=64):
    """A 48x48 FER2013 face upscaled and padded with its edge pixels (detectors need some context)."""
    face = Image.open(path).convert("L").resize((48 * factor, 48 * factor), Image.BICUBIC)
    return np.pad(np.asarray(face), pad, mode="edge")


@pytest.mark.data
@pytest.mark.slow
@pytest.mark.parametrize("name", ["yunet", "retinaface"])
def test_fer2013_faces_upscaled(fer2013_root, detectors, name):
    files = _fer_faces(2)
    hits = 0
    for f in files:
        faces = detectors[name].detect(_upscaled(f, factor=3, pad=48))
        hits += bool(faces) and iou(faces[0].box, (48, 48, 192, 192)) > 0.4
    assert hits >= 0.8 * len(files), f"{hits}/{len(files)}"


@pytest.mark.data
@pytest.mark.slow
def test_several_faces_in_one_image(fer2013_root, detectors):
    tiles = [_upscaled(f, factor=3, pad=40) for f in _fer_faces(1)[:4]]  # 4 faces of 144 px in 224 px tiles
    grid = np.block([[tiles[0], tiles[1]], [tiles[2], tiles[3]]])
    faces = detectors["retinaface"].detect(grid)
    assert len(faces) == 4
    centres = sorted((int((f.box[1] + f.box[3]) / 2 // 224), int((f.box[0] + f.box[2]) / 2 // 224)) for f in faces)
    assert centres == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert [f.score for f in faces] == sorted((f.score for f in faces), reverse=True)


def test_weights_resolved_through_the_cache(detectors, astronaut):
    from ferkit.errors import WeightsError
    from ferkit.hub import import_weights

    with pytest.raises(WeightsError, match="ferkit weights import"):
        create_detector("retinaface")  # offline (conftest) and the per-test cache is empty
    for f in ("retinaface_mobilenet0.25_Final.pth", "mtcnn_pnet.pt", "mtcnn_rnet.pt", "mtcnn_onet.pt",
              "face_detection_yunet_2023mar.onnx"):
        import_weights(SHARED_WEIGHTS / f)
    half = np.asarray(Image.fromarray(astronaut).resize((256, 256), Image.BILINEAR))  # test speed
    for name in NEURAL:
        faces = create_detector(name).detect(half)
        assert len(faces) == 1 and iou(np.array(faces[0].box) * 2, ASTRONAUT_FACE) > 0.6


def test_bad_options_are_rejected(detectors):
    with pytest.raises(ValueError, match="unknown face detector"):
        create_detector("dlib")
    with pytest.raises(TypeError, match="unknown option"):
        create_detector("haar", min_neighbours=3)
    with pytest.raises(ValueError, match="score_threshold"):
        create_detector("haar", score_threshold=2.0)


@pytest.mark.parametrize("shape", [(1, 1), (7, 5, 3), (12, 900, 3), (40, 40, 4)])
def test_tiny_and_odd_images_give_no_face_without_error(detectors, shape):
    img = np.full(shape, 90, np.uint8)
    for name, det in detectors.items():
        assert det.detect(img) == [], name


def test_opencv_is_optional(monkeypatch, shared_weights):
    import sys

    monkeypatch.setitem(sys.modules, "cv2", None)  # any `import cv2` now fails
    with pytest.raises(ImportError, match=r"ferkit\[detect\]"):
        create_detector("haar")
    with pytest.raises(ImportError, match=r"ferkit\[detect\]"):
        create_detector("yunet", weights=shared_weights / "face_detection_yunet_2023mar.onnx")
    det = create_detector("retinaface", weights=shared_weights / "retinaface_mobilenet0.25_Final.pth")
    assert det.detect(np.zeros((64, 64, 3), np.uint8)) == []
