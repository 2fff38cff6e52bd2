"""ferkit.image: conversions to RGB uint8, checked against hand-computed values."""

import numpy as np
import pytest
from PIL import Image

from ferkit.image import load_image, resize_max_side, to_rgb_uint8


def test_rgb_uint8_passes_through_unchanged():
    img = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    out = to_rgb_uint8(img)
    assert out.dtype == np.uint8 and out.shape == (5, 7, 3)
    np.testing.assert_array_equal(out, img)


@pytest.mark.parametrize("shape", [(4, 6), (4, 6, 1)])
def test_grayscale_is_repeated_in_three_channels(shape):
    gray = np.arange(24, dtype=np.uint8).reshape(shape)
    out = to_rgb_uint8(gray)
    assert out.shape == (4, 6, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[:, :, c], gray.reshape(4, 6))


def test_rgba_and_gray_alpha_drop_alpha():
    rgba = np.zeros((2, 2, 4), dtype=np.uint8)
    rgba[..., 0], rgba[..., 1], rgba[..., 2], rgba[..., 3] = 10, 20, 30, 0
    np.testing.assert_array_equal(to_rgb_uint8(rgba)[0, 0], [10, 20, 30])
    la = np.stack([np.full((2, 2), 77, np.uint8), np.zeros((2, 2), np.uint8)], axis=2)
    np.testing.assert_array_equal(to_rgb_uint8(la)[1, 1], [77, 77, 77])


def test_uint16_scaled_by_257_with_rounding():
    vals = np.array([[0, 257, 65535, 128, 129 * 257 - 128]], dtype=np.uint16)
    out = to_rgb_uint8(vals)[0, :, 0]
    expected = np.rint(vals[0].astype(np.float64) / 257.0)
    np.testing.assert_array_equal(out, expected)


def test_float_and_bool_inputs():
    f = np.array([[0.0, 0.5, 1.0]])
    np.testing.assert_array_equal(to_rgb_uint8(f)[0, :, 1], [0, 128, 255])
    b = np.array([[True, False]])
    np.testing.assert_array_equal(to_rgb_uint8(b)[0, :, 2], [255, 0])


def test_bgr_order_is_flipped():
    bgr = np.zeros((1, 1, 3), np.uint8)
    bgr[0, 0] = (1, 2, 3)
    np.testing.assert_array_equal(to_rgb_uint8(bgr, channel_order="bgr")[0, 0], [3, 2, 1])


def test_pil_images_of_several_modes():
    rgb = np.random.default_rng(1).integers(0, 256, (3, 4, 3), dtype=np.uint8)
    np.testing.assert_array_equal(to_rgb_uint8(Image.fromarray(rgb)), rgb)
    np.testing.assert_array_equal(to_rgb_uint8(Image.fromarray(rgb).convert("P")).shape, (3, 4, 3))
    g16 = Image.fromarray(np.full((3, 4), 65535, dtype=np.uint16))
    assert to_rgb_uint8(g16).max() == 255


@pytest.mark.parametrize("bad, msg", [
    (np.zeros((2, 2, 5), np.uint8), "shape"),
    (np.zeros((1, 2, 2, 3), np.uint8), "shape"),
    (np.zeros((0, 3, 3), np.uint8), "empty"),
    (np.full((2, 2, 3), 2.0), r"\[0, 1\]"),
    (np.full((2, 2, 3), np.nan), "NaN"),
    (np.zeros((2, 2, 3), np.int32), "dtype"),
    ("not an image", "numpy array"),
])
def test_bad_inputs_raise_clear_errors(bad, msg):
    with pytest.raises(ValueError, match=msg):
        to_rgb_uint8(bad)


def test_resize_max_side_scales_and_reports_the_factors():
    img = np.zeros((300, 1000, 3), np.uint8)
    small, (sx, sy) = resize_max_side(img, 500)
    assert small.shape == (150, 500, 3)
    assert sx == pytest.approx(0.5) and sy == pytest.approx(0.5)
    same, scale = resize_max_side(img, 2000)
    assert same is img and scale == (1.0, 1.0)


def test_load_image_reads_16bit_png_and_rejects_non_images(tmp_path):
    arr = (np.arange(12, dtype=np.uint16).reshape(3, 4) * 5000).astype(np.uint16)
    Image.fromarray(arr).save(tmp_path / "g16.png")
    out = load_image(tmp_path / "g16.png")
    assert out.shape == (3, 4, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[..., 0], np.rint(arr / 257.0))
    (tmp_path / "x.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="cannot read"):
        load_image(tmp_path / "x.png")
    with pytest.raises(FileNotFoundError):
        load_image(tmp_path / "missing.png")


def test_core_image_module_imports_no_higher_layer():
    """``ferkit.image`` is the one home of image decoding (core layer): it must not pull in ``ferkit.data``."""
    import subprocess
    import sys

    code = "import sys, ferkit.image; print(sorted(m for m in sys.modules if m.startswith('ferkit.')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "ferkit.data" not in out and "ferkit.image" in out
