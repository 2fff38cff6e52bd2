"""``ferkit predict`` at corpus scale in real processes, with the default model (shipped in the package) and no
detector: killed with SIGKILL and resumed, and sharded over 2 Gloo processes by ``torchrun``, each compared byte for
byte with one uninterrupted single-process run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
N_IMAGES = 40
#: batch size 1: a face's numbers then do not depend on the other images of its batch (which differ between shards)
PREDICT = ["predict", "--detector", "none", "--device", "cpu", "--batch-size", "1", "--no-progress"]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "FERKIT_OFFLINE": "1"}


def _ferkit(*args: str) -> list[str]:
    return [sys.executable, "-m", "ferkit", *args]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, Path]:
    """40 tiny images in two folders, and the output of one uninterrupted single-process run over them."""
    root = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(0)
    for i in range(N_IMAGES):
        folder = root / "imgs" / ("a" if i % 2 else "b")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(folder / f"{i:02d}.png")
    ref = root / "ref.jsonl"
    proc = subprocess.run(_ferkit(*PREDICT, str(root / "imgs"), "-o", str(ref)), env=_env(), capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(ref.read_text().splitlines()) == N_IMAGES
    return root / "imgs", ref


@pytest.mark.slow
def test_kill_9_then_resume_equals_an_uninterrupted_run(tmp_path, corpus):
    imgs, ref = corpus
    out = tmp_path / "out.jsonl"
    cmd = _ferkit(*PREDICT, str(imgs), "-o", str(out))
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None:
        if out.is_file() and out.read_bytes().count(b"\n") >= 3:
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    held = out.read_bytes()
    assert 3 <= held.count(b"\n") < N_IMAGES
    state = json.loads((tmp_path / "out.jsonl.state.json").read_text())
    assert state["complete"] is False and state["settings"]["inputs"] == [str(imgs)]
    resumed = subprocess.run([*cmd, "--resume"], env=_env(), capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "already held" in resumed.stderr
    assert out.read_bytes() == ref.read_bytes()  # same rows, same order, nothing lost or written twice
    assert out.read_bytes().startswith(held.rsplit(b"\n", 1)[0])  # the records written before the kill were kept


@pytest.mark.slow
def test_torchrun_two_gloo_processes_merge_into_the_single_process_output(tmp_path, corpus):
    imgs, ref = corpus
    out = tmp_path / "out.jsonl"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "ferkit",
           *PREDICT, str(imgs), "-o", str(out)]
    proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert out.read_bytes() == ref.read_bytes()
    state = json.loads((tmp_path / "out.jsonl.state.json").read_text())
    assert state["complete"] and state["records"] == N_IMAGES and state["merged_from"] == [
        "out.rank0-of-2.jsonl", "out.rank1-of-2.jsonl"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl", "out.jsonl.state.json"]  # shards removed
