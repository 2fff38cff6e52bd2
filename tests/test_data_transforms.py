"""Transforms against hand-computed float64 references with the papers' constants (typed here, not imported)."""

import numpy as np
import pytest
import torch
from PIL import Image

from ferkit.errors import ConfigError
from ferkit.models.transforms import build_transform, resolve_transform_config

IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
CLIP = ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))


def _photo(w=60, h=50, seed=0):
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8))


def _reference(image, size, resample, mean_std):
    a = np.asarray(image.resize((size, size), resample), dtype=np.float64) / 255.0
    mean, std = (np.array(v).reshape(1, 1, 3) for v in mean_std)
    return torch.from_numpy(((a - mean) / std).transpose(2, 0, 1))


@pytest.mark.parametrize("family, resample, consts", [("poster_v2", Image.BILINEAR, IMAGENET),
                                                      ("mpa_fer", Image.BICUBIC, CLIP)])
def test_eval_matches_reference(family, resample, consts):
    image = _photo()
    out = build_transform(family, train=False)(image)
    assert out.shape == (3, 224, 224) and out.dtype == torch.float32
    torch.testing.assert_close(out.double(), _reference(image, 224, resample, consts), atol=1e-5, rtol=0)


def test_poster_erasing_comes_after_normalisation():
    white = Image.new("RGB", (40, 40), (255, 255, 255))
    tf = build_transform("poster_v2", train=True, hflip=0.0, erasing_p=1.0)
    out = tf(white)
    expected = (1.0 - torch.tensor(IMAGENET[0])) / torch.tensor(IMAGENET[1])
    erased = (out == 0).all(dim=0)  # erased pixels hold 0 = the mean colour, not black (which would be -mean/std)
    assert erased.any()
    kept = out[:, ~erased]
    torch.testing.assert_close(kept, expected[:, None].expand_as(kept), atol=1e-6, rtol=0)
    area = erased.float().mean().item()
    assert 0.02 * 0.8 <= area <= 0.1 * 1.25  # RAF-DB scale (0.02, 0.1), up to rounding of the box sides


@pytest.mark.parametrize("dataset, p, scale", [("rafdb", 0.5, (0.02, 0.1)), ("affectnet7", 1.0, (0.05, 0.05)),
                                               ("affectnet8", 1.0, (0.05, 0.05)), ("caer-s", 1.0, (0.05, 0.05)),
                                               (None, 0.5, (0.02, 0.1))])
def test_poster_erasing_per_dataset(dataset, p, scale):
    cfg = resolve_transform_config("poster_v2", True, dataset=dataset)
    assert (cfg.erasing_p, cfg.erasing_scale, cfg.erasing_ratio, cfg.erasing_value) == (p, scale, (0.3, 3.3), 0.0)
    assert cfg.resize_size is None and cfg.interpolation == "bilinear" and cfg.mean == IMAGENET[0]


def test_affectnet_erasing_always_5_percent():
    tf = build_transform("poster_v2", train=True, dataset="affectnet8", hflip=0.0)
    areas = [(tf(Image.new("RGB", (224, 224), (255,) * 3)) == 0).all(dim=0).float().mean().item() for _ in range(5)]
    assert all(abs(a - 0.05) < 0.006 for a in areas)  # p = 1, area exactly 5 % up to integer box sides


def test_mpa_train_is_a_random_224_crop_of_the_256_resize():
    image = _photo(80, 70, seed=1)
    cfg = resolve_transform_config("mpa_fer", True)
    assert (cfg.resize_size, cfg.input_size, cfg.interpolation, cfg.mean, cfg.std) == (256, 224, "bicubic", *CLIP)
    assert (cfg.erasing_p, cfg.erasing_scale) == (0.5, (0.02, 0.1))
    out = build_transform("mpa_fer", True, hflip=0.0, erasing_p=0.0)(image)
    big = _reference(image, 256, Image.BICUBIC, CLIP).float()
    corner = out[:, :3, :3]
    candidates = [(y, x) for y in range(33) for x in range(33)
                  if torch.allclose(big[:, y:y + 3, x:x + 3], corner, atol=1e-5)]
    offsets = [(y, x) for y, x in candidates if torch.allclose(big[:, y:y + 224, x:x + 224], out, atol=1e-5)]
    assert len(offsets) == 1


def test_flip():
    image = _photo()
    flipped = build_transform("poster_v2", True, hflip=1.0, erasing_p=0.0)(image)
    torch.testing.assert_close(flipped, build_transform("poster_v2", False)(image).flip(-1))


def test_model_data_config_and_overrides():
    data_config = {"family": "mpa_fer", "input_size": (3, 336, 336), "mean": CLIP[0], "std": CLIP[1],
                   "interpolation": "bicubic", "crop_pct": 1.0}
    cfg = resolve_transform_config(data_config, True)
    assert (cfg.input_size, cfg.resize_size) == (336, 384)
    assert build_transform(data_config, False)(_photo()).shape == (3, 336, 336)
    assert resolve_transform_config("poster_v2", True, input_size=112, erasing_p=0).erasing_p == 0.0
    with pytest.raises(ConfigError, match="unknown config key 'erase'"):
        build_transform("poster_v2", True, erase=0.3)
    with pytest.raises(ConfigError, match="unknown model family"):
        build_transform("poster_v3", True)
    with pytest.raises(ConfigError, match="interpolation"):
        build_transform("poster_v2", True, interpolation="cubic")


def test_grey_and_sixteen_bit_inputs_become_three_channels():
    from ferkit.data.images import to_rgb

    grey16 = Image.fromarray(np.arange(48 * 48, dtype=np.uint16).reshape(48, 48) * 28)
    out = build_transform("poster_v2", False)(to_rgb(grey16))
    assert out.shape == (3, 224, 224) and torch.isfinite(out).all()
