"""Image decoding (``ferkit.image``): every Pillow mode to 8-bit RGB, EXIF orientation, clear errors for bad files;
the old ``ferkit.data.load_image`` name still works, with a DeprecationWarning."""

import io

import numpy as np
import pytest
from PIL import Image

from ferkit.errors import DatasetError
from ferkit.image import ImageReadError, load_image, load_pil, to_rgb


def _png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def test_grey_and_bilevel():
    grey = Image.fromarray(np.array([[0, 100], [200, 255]], dtype=np.uint8))
    out = np.asarray(to_rgb(grey))
    assert out.shape == (2, 2, 3) and (out[..., 0] == out[..., 2]).all()
    assert out[1, 0].tolist() == [200, 200, 200]
    assert np.asarray(to_rgb(grey.convert("1")))[0, 0].tolist() == [0, 0, 0]


def test_sixteen_bit_png_scaled_not_clipped():
    values = np.array([[0, 257, 32896], [65535, 1000, 40000]], dtype=np.uint16)
    image = load_pil(_png_bytes(Image.fromarray(values)))
    expected = np.round(values / 257.0).astype(np.uint8)  # 65535 -> 255; Pillow's convert would clip to 255 early
    assert image.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(image)[..., 1], expected)


def test_int32_and_float_modes():
    eight_bit = Image.fromarray(np.array([[0, 128, 255]], dtype=np.int32))
    assert np.asarray(to_rgb(eight_bit))[0, :, 0].tolist() == [0, 128, 255]
    sixteen = Image.fromarray(np.array([[0, 65535, 514]], dtype=np.int32))
    assert np.asarray(to_rgb(sixteen))[0, :, 0].tolist() == [0, 255, 2]
    unit = Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32))
    assert np.asarray(to_rgb(unit))[0, :, 0].tolist() == [0, 128, 255]


def test_alpha_composited_on_background():
    rgba = np.zeros((1, 2, 4), dtype=np.uint8)
    rgba[0, 0] = [200, 0, 0, 255]  # opaque red
    rgba[0, 1] = [0, 0, 200, 0]  # fully transparent blue: background shows
    out = np.asarray(to_rgb(Image.fromarray(rgba), background=(10, 20, 30)))
    assert out[0, 0].tolist() == [200, 0, 0] and out[0, 1].tolist() == [10, 20, 30]
    la = Image.new("LA", (1, 1), (100, 128))
    # 50 % alpha over white: 100 * 128/255 + 255 * 127/255
    assert abs(int(np.asarray(to_rgb(la))[0, 0, 0]) - round(100 * 128 / 255 + 255 * 127 / 255)) <= 1


def test_palette_with_transparency_and_cmyk():
    p = Image.new("P", (2, 1))
    p.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    p.putpixel((1, 0), 1)
    p.info["transparency"] = 1
    out = np.asarray(load_pil(_png_bytes(p), background=(0, 0, 0)))
    assert out[0, 0].tolist() == [255, 0, 0] and out[0, 1].tolist() == [0, 0, 0]
    cmyk = Image.new("CMYK", (1, 1), (0, 255, 255, 0))  # pure red in CMYK
    assert to_rgb(cmyk).getpixel((0, 0)) == (255, 0, 0)


def test_exif_orientation_applied():
    a = np.zeros((20, 40, 3), dtype=np.uint8)
    a[:, :20] = 255  # left half white
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: display = rotate 90 degrees clockwise
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="JPEG", exif=exif, quality=100)
    image = load_pil(buf.getvalue())
    assert image.size == (20, 40)  # width and height swapped
    expected = np.rot90(a, k=-1)  # clockwise: the white left half becomes the top half
    assert np.abs(np.asarray(image, dtype=int) - expected).max() < 40


def test_missing_empty_truncated_and_garbage(tmp_path):
    with pytest.raises(ImageReadError, match="not found: .*nope.jpg"):
        load_pil(tmp_path / "nope.jpg")
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(ImageReadError, match="empty.jpg.*empty"):
        load_pil(tmp_path / "empty.jpg")
    (tmp_path / "text.png").write_text("hello")
    with pytest.raises(ImageReadError, match="not an image"):
        load_pil(tmp_path / "text.png")
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buf, "JPEG")
    (tmp_path / "cut.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(DatasetError, match="cut.jpg"):
        load_pil(tmp_path / "cut.jpg")


def test_load_image_is_load_pil_as_an_array(tmp_path):
    values = np.array([[0, 257, 32896], [65535, 1000, 40000]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "g16.png")
    arr = load_image(tmp_path / "g16.png")
    assert isinstance(arr, np.ndarray) and arr.dtype == np.uint8 and arr.shape == (2, 3, 3) and arr.flags.c_contiguous
    np.testing.assert_array_equal(arr, np.asarray(load_pil(tmp_path / "g16.png")))
    np.testing.assert_array_equal(arr, load_image((tmp_path / "g16.png").read_bytes()))
    with pytest.raises(FileNotFoundError):
        load_image(tmp_path / "nope.png")


def test_deprecated_data_names_forward_to_the_one_home():
    import ferkit.data
    import ferkit.data.images as data_images
    import ferkit.image

    assert data_images.to_rgb is ferkit.image.to_rgb and ferkit.data.ImageReadError is ferkit.image.ImageReadError
    assert data_images.is_image_file is ferkit.image.is_image_file
    png = _png_bytes(Image.new("L", (3, 2), 7))
    with pytest.warns(DeprecationWarning, match="ferkit.image.load_pil"):
        out = ferkit.data.load_image(png)
    assert isinstance(out, Image.Image) and out.mode == "RGB" and out.size == (3, 2)
