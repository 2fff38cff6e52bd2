"""DistributedDataParallel through ``torchrun`` with 2 Gloo processes on CPU, checked against one process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ferkit.checkpoint import read_checkpoint
from ferkit.train import load_config, save_config, train
from tests._engine_helpers import make_folder_dataset, tiny_overrides

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_torchrun_two_gloo_processes_match_one_process(tmp_path):
    """Global batch 8 = 2 processes x 4: the DistributedSampler shards the same permutation, gradients are averaged,
    so without BatchNorm, dropout and augmentation the result equals one process with batch 8."""
    root = make_folder_dataset(tmp_path / "data", n_train=10, n_val=5)
    over = tiny_overrides(root, **{"model.options": {"bn": False, "dropout": 0.0}, "train.epochs": 2,
                                   "data.train_transform": {"hflip": 0.0, "erasing_p": 0.0}})
    cfg = load_config(overrides=over)
    single = train(cfg, out_dir=tmp_path / "single")
    save_config(cfg, tmp_path / "ddp.yaml")
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "ferkit",
           "train", str(tmp_path / "ddp.yaml"), "--out", str(tmp_path / "ddp")]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ddp = read_checkpoint(tmp_path / "ddp" / "last.pt")
    ref = read_checkpoint(single.out_dir / "last.pt")
    assert ddp["training"]["world_size"] == 2 and ddp["training"]["epoch"] == 2
    for k, v in ref["state_dict"].items():
        torch.testing.assert_close(ddp["state_dict"][k], v, rtol=1e-4, atol=1e-5)
    for a, b in zip(ddp["training"]["history"], ref["training"]["history"]):
        assert a["val_accuracy"] == b["val_accuracy"]  # sharded validation covers every image exactly once
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-4)
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4)
    assert (tmp_path / "ddp" / "metrics.csv").is_file() and not (tmp_path / "ddp" / "last.pt.tmp").exists()
