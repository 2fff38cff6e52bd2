"""Train -> checkpoint -> interrupt -> resume -> eval with a tiny model on a synthetic class-folder data set (CPU)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import ferkit
from ferkit.checkpoint import read_checkpoint
from ferkit.cli.main import main as cli
from ferkit.errors import ConfigError
from ferkit.train import load_config, train
from ferkit.train.step import StepRunner
from tests._engine_helpers import make_folder_dataset, tiny_overrides

TIMING = ("images_per_second", "epoch_seconds")


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    return make_folder_dataset(tmp_path_factory.mktemp("faces"))


@pytest.fixture(scope="module")
def finished_run(data_root, tmp_path_factory):
    """An uninterrupted 3-epoch run (SAM around Adam, dropout, augmentation, one worker process)."""
    out = tmp_path_factory.mktemp("run") / "full"
    cfg = load_config(overrides=tiny_overrides(data_root, out, **{"optim.sam": True, "data.num_workers": 1,
                                                                  "output.plots": True}))
    return train(cfg), cfg


def _strip(history):
    return [{k: v for k, v in h.items() if k not in TIMING} for h in history]


def test_run_outputs_and_checkpoints(finished_run, data_root):
    result, _ = finished_run
    out = result.out_dir
    for name in ("last.pt", "best.pt", "config.yaml", "metrics.csv", "curves.png", "summary.json", "train.log"):
        assert (out / name).is_file(), name
    last, best = read_checkpoint(out / "last.pt"), read_checkpoint(out / "best.pt")  # weights_only=True reads
    assert set(best) == {"format", "model", "model_args", "label_names", "data_config", "state_dict", "meta"}
    assert set(last) == set(best) | {"training"}
    t = last["training"]
    assert t["epoch"] == 3 and len(t["history"]) == 3 and t["config"]["optim"]["sam"] is True
    assert {"optimizer", "scheduler", "sampler", "rng", "best"} <= set(t)
    assert last["label_names"] == ["anger", "happiness", "neutral", "sadness"]
    for path in (out / "last.pt", out / "best.pt"):
        model = ferkit.create_model("tiny_fer", checkpoint=path)
        assert model.label_names == ("anger", "happiness", "neutral", "sadness")
    assert best["meta"]["epoch"] == result.best["epoch"]
    rows = (out / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("epoch,lr,train_loss,train_accuracy,val_loss,val_accuracy") and len(rows) == 4
    summary = json.loads((out / "summary.json").read_text())
    assert summary["epochs_done"] == 3 and summary["best"]["metric"] == "accuracy"
    assert Image.open(out / "curves.png").size[0] > 300
    # the data is easy: clearly above the 25 % chance level after 3 epochs
    assert result.history[-1]["val_accuracy"] > 0.5 and 0 < result.history[-1]["train_loss"] < 1.4


def test_interrupt_and_resume_replays_exactly(finished_run, data_root, tmp_path, monkeypatch):
    full, cfg = finished_run
    out = tmp_path / "interrupted"
    calls = {"n": 0}
    original = StepRunner.__call__

    def interrupt_in_epoch_two(self, batches):
        calls["n"] += 1
        if calls["n"] == 8:  # 6 steps per epoch: step 2 of epoch 2
            raise KeyboardInterrupt
        return original(self, batches)

    monkeypatch.setattr(StepRunner, "__call__", interrupt_in_epoch_two)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, out_dir=out)
    assert read_checkpoint(out / "last.pt")["training"]["epoch"] == 1
    monkeypatch.setattr(StepRunner, "__call__", original)
    resumed = train(resume=out)
    assert resumed.epochs_done == 3
    assert _strip(resumed.history) == _strip(full.history)
    a, b = read_checkpoint(full.out_dir / "last.pt"), read_checkpoint(out / "last.pt")
    for k, v in a["state_dict"].items():
        assert torch.equal(v, b["state_dict"][k]), k
    sa, sb = a["training"]["optimizer"]["state"], b["training"]["optimizer"]["state"]
    assert all(torch.equal(sa[i]["exp_avg_sq"], sb[i]["exp_avg_sq"]) for i in sa)


def test_resume_with_changed_config_names_differences(finished_run, tmp_path):
    full, _ = finished_run
    with pytest.raises(ConfigError) as e:
        train(resume=full.out_dir, overrides={"optim.lr": 0.5, "train.epochs": 4})
    msg = str(e.value)
    assert "optim.lr: 0.01 -> 0.5" in msg and "train.epochs: 3 -> 4" in msg and "--allow-changes" in msg
    # a finished run resumed with its own config has nothing left to do
    again = train(resume=full.out_dir / "last.pt", overrides={"data.num_workers": 0})
    assert again.epochs_done == 3


def test_resume_allow_changes_extends_training(data_root, tmp_path):
    cfg = load_config(overrides=tiny_overrides(data_root, tmp_path / "r", **{"train.epochs": 1,
                                                                            "output.progress": "bar"}))
    train(cfg)
    result = train(resume=tmp_path / "r", overrides={"train.epochs": 2, "output.progress": "log",
                                                     "output.log_every": 2}, allow_changes=True)
    assert result.epochs_done == 2 and [h["epoch"] for h in result.history] == [1, 2]


def test_fresh_run_refuses_existing_run_folder(finished_run):
    _, cfg = finished_run
    with pytest.raises(ConfigError, match="already holds a run"):
        train(cfg)


def test_training_loss_hook_parts_logged_and_early_stopping(data_root, tmp_path):
    over = tiny_overrides(data_root, tmp_path / "es", **{"model.options": {"aux_loss": True}, "train.epochs": 5,
                                                          "train.early_stopping": 1, "train.min_delta": 2.0})
    result = train(load_config(overrides=over))
    assert result.stopped_early and result.epochs_done == 2  # nothing beats the first epoch by 2.0
    assert {"train_ce", "train_aux"} <= set(result.history[0])
    assert result.history[0]["train_aux"] > 0
    assert train(resume=tmp_path / "es").epochs_done == 2  # a stopped run stays stopped


def test_balanced_sampler_bf16_accumulation_channels_last(data_root, tmp_path):
    over = tiny_overrides(data_root, tmp_path / "bf16", **{
        "data.sampler": "balanced", "train.precision": "bf16", "train.accum_steps": 2, "train.epochs": 1,
        "model.channels_last": True, "data.max_train_samples": 20, "data.max_val_samples": 8,
        "eval.test_split": "val", "output.tensorboard": True})
    result = train(load_config(overrides=over))
    h = result.history[0]
    assert np.isfinite(h["train_loss"]) and 0 <= h["val_accuracy"] <= 1
    summary = json.loads((tmp_path / "bf16" / "summary.json").read_text())
    test = json.loads((tmp_path / "bf16" / "test" / "report.json").read_text())
    assert summary["test"]["num_samples"] == test["num_samples"] == 24  # the whole split, not the 8-image subset
    assert summary["test"]["accuracy"] == test["accuracy"]
    assert list((tmp_path / "bf16" / "tensorboard").glob("events.out.tfevents.*"))


def test_eval_cli_report_and_plots(finished_run, data_root, tmp_path, capsys):
    full, _ = finished_run
    out = tmp_path / "eval"
    code = cli(["eval", "--checkpoint", str(full.out_dir / "best.pt"), "--data", "folder", "--root", str(data_root),
                "--split", "val", "--out", str(out), "--workers", "0", "--tsne", "--batch-size", "5"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "mean class accuracy" in printed and "| happiness | 6 |" in printed
    report = json.loads((out / "report.json").read_text())
    cm = np.array(report["confusion_matrix"])
    assert cm.sum() == 24 and cm.sum(1).tolist() == [6, 6, 6, 6]
    assert report["accuracy"] == pytest.approx(np.trace(cm) / 24)
    assert report["accuracy"] == pytest.approx(full.history[full.best["epoch"] - 1]["val_accuracy"])
    assert 0 <= report["macro_f1"] <= 1 and report["label_mapping"]["anger"] == "anger"
    for name in ("confusion_counts.png", "confusion_normalized.png", "tsne.png"):
        assert Image.open(out / name).format == "PNG"
    assert "| **overall accuracy** | 24 |" in (out / "per_class.md").read_text()


def test_eval_maps_labels_by_name(finished_run, tmp_path):
    """Data in another order with a class the model lacks (fear) and missing two of the model's classes."""
    full, _ = finished_run
    root = tmp_path / "other"
    make_folder_dataset(root, n_train=1, n_val=4, classes=("sadness", "happiness"))
    fear = root / "val" / "fear"
    fear.mkdir()
    for i in range(3):
        Image.new("RGB", (16, 16), (90, 90, 90)).save(fear / f"f{i}.png")
    out = tmp_path / "eval"
    assert cli(["eval", "--checkpoint", str(full.out_dir / "last.pt"), "--data", "folder", "--root", str(root),
                "--split", "val", "--out", str(out), "--workers", "0"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["dataset"]["label_names"] == ["fear", "happiness", "sadness"]
    assert report["label_mapping"] == {"fear": None, "happiness": "happiness", "sadness": "sadness"}
    assert report["excluded"]["samples"] == 3 and report["excluded"]["classes"] == ["fear"]
    assert report["num_samples"] == 8 and sorted(report["absent_classes"]) == ["anger", "neutral"]
    per = {r["class"]: r for r in report["per_class"]}
    assert per["happiness"]["support"] == 4 and per["anger"]["accuracy"] is None


def test_bad_config_fails_before_training_and_names_the_key(data_root, tmp_path, capsys):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("model:\n  name: tiny_fer\noptim:\n  lrr: 0.1\n")
    assert cli(["train", str(cfg), "--out", str(tmp_path / "o")]) == 2
    assert "optim.lrr" in capsys.readouterr().err
    cfg.write_text("train:\n  epochs: many\n")
    assert cli(["train", str(cfg), "--out", str(tmp_path / "o")]) == 2
    assert "'train.epochs'" in capsys.readouterr().err
    cfg.write_text("train:\n  epochs: 2\n")
    assert cli(["train", str(cfg), "--set", "train.batch_size=8", "--set", "optim.momentun=0.1"]) == 2
    assert "optim.momentun" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
    with pytest.raises(ConfigError, match="train.batch_size.*divisible"):
        train(load_config(overrides=tiny_overrides(data_root, tmp_path / "d", **{"train.accum_steps": 3})))


def test_missing_data_path_names_layout(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"plugins: [{Path(__file__).parent / '_tiny_fer_model.py'}]\nmodel: {{name: tiny_fer}}\n"
                   f"data: {{name: fer2013, root: {tmp_path / 'nowhere'}, val_split: val}}\n")
    assert cli(["train", str(cfg), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "nowhere" in err and "ROOT/train/<class>" in err


@pytest.mark.data
def test_tiny_model_on_real_fer2013_subset(fer2013_root, tmp_path):
    """The engine on real FER2013 JPEGs (48x48 grey -> RGB): stratified subsets, a full epoch, sane numbers."""
    over = tiny_overrides(fer2013_root, tmp_path / "fer", **{
        "data.name": "fer2013", "data.max_train_samples": 140, "data.max_val_samples": 70, "train.epochs": 1,
        "train.batch_size": 35, "model.options": {"input_size": 32}})
    result = train(load_config(overrides=over))
    h = result.history[0]
    assert 0.0 <= h["val_accuracy"] <= 1.0 and np.isfinite(h["val_loss"])
    last = read_checkpoint(tmp_path / "fer" / "last.pt")
    assert last["label_names"] == ["anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral"]
