"""The recipe files in configs/ parse, validate and hold the papers' / official code's values (docs/training.md)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from ferkit.errors import ConfigError
from ferkit.train.config import load_config
from ferkit.train.schedule import LRSchedule

CONFIGS = Path(__file__).resolve().parents[1] / "configs"

# (file, data set, lr, sampler, erasing p, erasing scale) from the official POSTER_V2 main.py / main_8.py / README
# (docs/poster_v2.md#r5-training-recipe-and-sam-step)
POSTER = [
    ("poster_v2_rafdb.yaml", "rafdb", 3.5e-5, "shuffle", 0.5, [0.02, 0.1]),
    ("poster_v2_affectnet7.yaml", "affectnet7", 1e-6, "balanced", 1.0, [0.05, 0.05]),
    ("poster_v2_affectnet8.yaml", "affectnet8", 1e-6, "balanced", 1.0, [0.05, 0.05]),
    ("poster_v2_caer_s.yaml", "caer_s", 4e-5, "shuffle", 1.0, [0.05, 0.05]),
]
# (file, data set, epochs, sampler) from the MPA-FER paper §4.1 and docs/mpa_fer.md#d9-training-recipe-and-transforms
MPA = [
    ("mpa_fer_vit_b16_rafdb.yaml", "rafdb", 120, "shuffle"),
    ("mpa_fer_vit_b16_ferplus.yaml", "ferplus", 120, "shuffle"),
    ("mpa_fer_vit_b16_affectnet7.yaml", "affectnet7", 20, "balanced"),
    ("mpa_fer_vit_b16_affectnet8.yaml", "affectnet8", 20, "balanced"),
]


def test_every_config_file_loads():
    files = sorted(CONFIGS.glob("*.yaml"))
    assert len(files) >= 9
    for f in files:
        cfg = load_config(f)
        assert cfg.name == f.stem, f


@pytest.mark.parametrize("fname,dataset,lr,sampler,erase_p,erase_scale", POSTER)
def test_poster_v2_recipes_follow_the_official_code(fname, dataset, lr, sampler, erase_p, erase_scale):
    cfg = load_config(CONFIGS / fname)
    assert (cfg.model.name, cfg.data.name, cfg.data.sampler) == ("poster_v2", dataset, sampler)
    assert (cfg.optim.name, cfg.optim.lr, cfg.optim.weight_decay) == ("adam", lr, 0.0)
    assert cfg.optim.sam and cfg.optim.sam_rho == 0.05 and cfg.optim.grad_clip is None
    assert (cfg.schedule.name, cfg.schedule.gamma, cfg.schedule.interval) == ("exponential", 0.98, "epoch")
    assert (cfg.train.epochs, cfg.train.batch_size, cfg.train.precision) == (200, 144, "fp32")
    assert cfg.data.train_transform == {"erasing_p": erase_p, "erasing_scale": erase_scale}
    assert cfg.model.options["landmark_bn_mode"] == "train"
    assert cfg.follows == "code" and cfg.targets["accuracy"] > 60
    paper = load_config(CONFIGS / fname, {"optim.weight_decay": 1e-4})  # the paper's reading: one override away
    assert paper.optim.weight_decay == 1e-4 and paper != cfg
    assert replace(paper, optim=replace(paper.optim, weight_decay=0.0)) == cfg  # and nothing else moved
    assert LRSchedule(cfg.schedule, lr, 200).lr_at(199) == pytest.approx(lr * 0.98 ** 199)


@pytest.mark.parametrize("fname,dataset,epochs,sampler", MPA)
def test_mpa_fer_recipes_follow_the_paper(fname, dataset, epochs, sampler):
    cfg = load_config(CONFIGS / fname)
    assert (cfg.model.name, cfg.data.name, cfg.data.sampler) == ("mpa_fer_vit_b16", dataset, sampler)
    assert (cfg.optim.name, cfg.optim.lr, cfg.optim.momentum, cfg.optim.weight_decay) == ("sgd", 0.032, 0.9, 5e-4)
    assert not cfg.optim.sam
    s = cfg.schedule
    assert (s.name, s.interval, s.warmup_epochs, s.warmup_lr) == ("cosine", "epoch", 1, 1e-5)
    assert (cfg.train.epochs, cfg.train.batch_size, cfg.train.precision) == (epochs, 32, "auto")
    sched = LRSchedule(s, 0.032, epochs)
    assert sched.lr_at(0) == 1e-5 and sched.lr_at(1) == pytest.approx(0.032)
    large = load_config(CONFIGS / fname, {"model.name": "mpa_fer_vit_l14"})
    assert large.model.name == "mpa_fer_vit_l14"
    assert replace(large, model=replace(large.model, name=cfg.model.name)) == cfg


def test_cpu_demo_config_is_small():
    cfg = load_config(CONFIGS / "poster_v2_fer2013_cpu.yaml")
    assert cfg.model.name == "poster_v2" and cfg.data.name == "fer2013" and cfg.train.device == "cpu"
    assert cfg.data.max_train_samples <= 5000 and cfg.train.precision == "fp32"
    assert cfg.train.epochs * cfg.train.max_steps_per_epoch * cfg.train.batch_size <= 2500  # ~20 min at 2.3 img/s


def test_unknown_key_in_recipe_names_it(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text((CONFIGS / "poster_v2_rafdb.yaml").read_text().replace("sam_rho:", "sam_rhoo:"))
    with pytest.raises(ConfigError, match="'optim.sam_rhoo'"):
        load_config(bad)
    with pytest.raises(ConfigError, match="'schedule.name'.*not one of"):
        load_config(CONFIGS / "poster_v2_rafdb.yaml", {"schedule.name": "linear"})
    with pytest.raises(ConfigError, match="'data.sampler'"):
        load_config(CONFIGS / "poster_v2_rafdb.yaml", {"data.sampler": 3})
