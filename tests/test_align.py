"""Face crops: geometry checked on synthetic images where the expected output is known analytically."""

import numpy as np
import pytest

from ferkit.detect import CROP_PRESETS, Face, crop_face, crop_preset
from ferkit.detect.align import ARCFACE_TEMPLATE_112, similarity_transform, template


def _similarity(scale, angle, tx, ty):
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[scale * c, -scale * s, tx], [scale * s, scale * c, ty]])


def _apply(m, pts):
    return pts @ m[:, :2].T + m[:, 2]


def test_similarity_transform_recovers_a_known_transform():
    m = _similarity(1.7, 0.3, 12.0, -4.0)
    src = ARCFACE_TEMPLATE_112
    np.testing.assert_allclose(similarity_transform(src, _apply(m, src)), m, atol=1e-10)


def test_similarity_transform_is_the_least_squares_solution():
    rng = np.random.default_rng(0)
    src = ARCFACE_TEMPLATE_112 + rng.normal(0, 3, (5, 2))
    dst = rng.uniform(0, 200, (5, 2))
    # independent solution: linear least squares in (a, b, tx, ty) with x' = a x - b y + tx, y' = b x + a y + ty
    rows = []
    for x, y in src:
        rows += [[x, -y, 1, 0], [y, x, 0, 1]]
    a, b, tx, ty = np.linalg.lstsq(np.array(rows), dst.reshape(-1), rcond=None)[0]
    np.testing.assert_allclose(similarity_transform(src, dst), [[a, -b, tx], [b, a, ty]], atol=1e-8)


def _dots_image(points, h=300, w=400):
    img = np.zeros((h, w, 3), np.uint8)
    for x, y in points:
        yy, xx = np.mgrid[0:h, 0:w]
        img[(xx + 0.5 - x) ** 2 + (yy + 0.5 - y) ** 2 <= 9] = 255
    return img


def _blob_centres(crop, expected):
    mask = crop[..., 0] > 100
    yy, xx = np.nonzero(mask)
    centres = []
    for ex, ey in expected:
        near = (xx + 0.5 - ex) ** 2 + (yy + 0.5 - ey) ** 2 < 15 ** 2
        centres.append([xx[near].mean() + 0.5, yy[near].mean() + 0.5])
    return np.array(centres)


@pytest.mark.parametrize("margin", [0.0, 0.2])
def test_five_point_puts_the_landmarks_on_the_template(margin):
    landmarks = _apply(_similarity(1.6, -0.25, 120.0, 60.0), ARCFACE_TEMPLATE_112)
    face = Face(box=(100.0, 50.0, 300.0, 260.0), score=1.0, landmarks=landmarks)
    crop = crop_face(_dots_image(landmarks), face, size=224, method="five_point", margin=margin)
    expected = template(224, margin)
    assert crop.shape == (224, 224, 3) and crop.dtype == np.uint8
    np.testing.assert_allclose(_blob_centres(crop, expected), expected, atol=1.0)


def test_template_margin_shrinks_about_the_centre():
    t0, t2 = template(100, 0.0), template(100, 0.25)
    np.testing.assert_allclose(t0, ARCFACE_TEMPLATE_112 / 112 * 100)
    np.testing.assert_allclose(t2 - 50, (t0 - 50) / 1.5)


def _gradient_image(h=100, w=200):
    """Red channel = x, green = y (so each output pixel tells where it was sampled)."""
    yy, xx = np.mgrid[0:h, 0:w]
    return np.dstack([xx, yy, np.full_like(xx, 128)]).astype(np.uint8)


def test_square_crop_geometry_by_hand():
    img = _gradient_image()
    # box 40x20 centred at (100, 50): square side 40 * (1 + 2 * 0.25) = 60 -> x in [70, 130), y in [20, 80)
    crop = crop_face(img, (80, 40, 120, 60), size=60, method="square", margin=0.25)
    np.testing.assert_allclose(crop[30, :, 0], np.arange(70, 130), atol=1)
    np.testing.assert_allclose(crop[:, 30, 1], np.arange(20, 80), atol=1)


def test_resize_crop_stretches_the_box():
    img = _gradient_image()
    crop = crop_face(img, (20, 10, 120, 60), size=50, method="resize", margin=0.0)
    np.testing.assert_allclose(crop[25, :, 0], np.arange(20, 120, 2) + 0.5, atol=1)  # 2 input px per output px
    np.testing.assert_allclose(crop[:, 25, 1], np.arange(10, 60), atol=1)


def test_padding_at_image_borders():
    img = _gradient_image()
    crop = crop_face(img, (-20, -20, 20, 20), size=40, method="square", margin=0.0, fill=7)
    assert (crop[:19, :19] == 7).all() and (crop[21:, 21:, 2] == 128).all()
    edge = crop_face(img, (-20, -20, 20, 20), size=40, method="square", margin=0.0, border="edge")
    assert (edge[:19, :19] == img[0, 0]).all()


def test_five_point_without_landmarks_falls_back_to_square():
    img = _gradient_image()
    face = Face(box=(80.0, 40.0, 120.0, 60.0), score=0.9, landmarks=None)
    np.testing.assert_array_equal(crop_face(img, face, method="five_point", margin=0.1),
                                  crop_face(img, face, method="square", margin=0.1))


def test_large_faces_are_reduced_before_warping_without_aliasing():
    stripes = np.zeros((1000, 1000, 3), np.uint8)
    stripes[:, ::2] = 255  # 1-pixel stripes alias badly when sampled without filtering
    crop = crop_face(stripes, (0, 0, 1000, 1000), size=50, method="square", margin=0.0)
    assert abs(float(crop.mean()) - 127.5) < 3 and crop.std() < 3


def test_grayscale_input_and_presets():
    gray = _gradient_image()[:, :, 0]
    crop = crop_face(gray, (20, 10, 120, 60), size=32)
    assert crop.shape == (32, 32, 3) and (crop[..., 0] == crop[..., 2]).all()
    assert set(CROP_PRESETS) == {"square", "rafdb_aligned", "affectnet", "fer2013", "none"}
    face = Face(box=(20.0, 10.0, 120.0, 60.0), score=1.0)
    np.testing.assert_array_equal(crop_preset(gray, face, "fer2013", size=32),
                                  crop_face(gray, face, size=32, method="square", margin=0.0))
    np.testing.assert_array_equal(crop_preset(gray, face, "none", size=32),
                                  crop_face(gray, face, size=32, method="resize", margin=0.0))


@pytest.mark.parametrize("kwargs, msg", [({"method": "affine"}, "unknown crop method"), ({"border": "wrap"}, "border"),
                                         ({"size": 0}, "size"), ({"margin": -0.6}, "margin")])
def test_bad_arguments(kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        crop_face(_gradient_image(), (10, 10, 50, 50), **kwargs)


def test_bad_boxes_and_landmarks():
    with pytest.raises(ValueError, match="x2 > x1"):
        crop_face(_gradient_image(), (50, 10, 40, 50))
    with pytest.raises(ValueError, match="landmarks"):
        crop_face(_gradient_image(), Face((10, 10, 50, 50), 1.0, np.zeros((4, 2))), method="five_point")
