"""Checkpoint files on disk: files that are not checkpoints, temporaries left by writers killed mid-save."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from ferkit.checkpoint import read_checkpoint, remove_stale_temps, save_checkpoint
from ferkit.cli.main import main
from ferkit.errors import CheckpointError

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("trust", [False, True])
@pytest.mark.parametrize(("content", "what"), [
    (b"epoch,loss\n1,0.5\n", "text starting with 'epoch,loss'"),
    (b"<!DOCTYPE html><html><body>Google Drive - quota exceeded</body></html>", "an HTML page"),
    (b"version https://git-lfs.github.com/spec/v1\noid sha256:0\nsize 9\n", "a Git LFS pointer"),
])
def test_a_file_that_is_not_a_checkpoint_says_so_and_names_it(tmp_path, trust, content, what):
    path = tmp_path / "model.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointError) as info:
        read_checkpoint(path, trust=trust)
    message = str(info.value)
    assert f"{path} is not a checkpoint" in message and "neither a PyTorch file" in message
    assert "safetensors" in message and what in message


def test_text_checkpoint_on_the_command_line_is_one_clear_line(tmp_path, capsys):
    path = tmp_path / "notes.pt"
    path.write_text("these are my notes, not weights\n")
    assert main(["info", "poster_v2", "--checkpoint", str(path), "--trust-checkpoint"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"ferkit info: error: {path} is not a checkpoint: neither a PyTorch file (zip archive or pickle) "
                   "nor safetensors; it holds text starting with 'these are my notes, not weights'"]


def test_legacy_and_zip_torch_files_still_read(tmp_path):
    for new_format in (True, False):
        path = tmp_path / f"w{new_format}.pt"
        torch.save({"w": torch.ones(2)}, path, _use_new_zipfile_serialization=new_format)
        assert read_checkpoint(path)["w"].tolist() == [1.0, 1.0]


def _killed_mid_save(target: Path) -> tuple[Path, int]:
    """Run a process that starts saving ``target`` and is killed with SIGKILL while writing; return its temporary
    and its process id."""
    code = ("import os, signal\nfrom ferkit.checkpoint import atomic_write_bytes\n"
            "def write(f):\n    f.write(b'x' * 100000)\n    f.flush()\n    os.kill(os.getpid(), signal.SIGKILL)\n"
            f"atomic_write_bytes({str(target)!r}, write)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stderr=subprocess.PIPE)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == -9, err.decode()[-2000:]
    (left,) = [p for p in target.parent.iterdir() if p.name.startswith(f".{target.name}.")]
    assert left.stat().st_size == 100000
    return left, proc.pid


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_next_save_removes_the_temporary_of_a_killed_writer_only(tmp_path):
    target = tmp_path / "last.pt"
    killed, dead_pid = _killed_mid_save(target)
    live = tmp_path / f".last.pt.{os.getpid()}.abcd1234.tmp"  # a save in progress in this very process
    live.write_bytes(b"partial")
    old_unnamed = tmp_path / ".last.pt.k2j3h4g5.tmp"  # written before temporaries carried a process id
    recent_unnamed = tmp_path / ".last.pt.q1w2e3r4.tmp"
    other_target = tmp_path / f".best.pt.{dead_pid}.zz99yy88.tmp"
    for p in (old_unnamed, recent_unnamed, other_target):
        p.write_bytes(b"?")
    two_hours_ago = time.time() - 7200
    os.utime(old_unnamed, (two_hours_ago, two_hours_ago))
    save_checkpoint({"state_dict": {"w": torch.zeros(3)}}, target)
    assert not killed.exists() and not old_unnamed.exists()
    assert live.exists() and recent_unnamed.exists() and other_target.exists()
    assert read_checkpoint(target)["state_dict"]["w"].tolist() == [0.0, 0.0, 0.0]
    assert remove_stale_temps(tmp_path / "best.pt") == [other_target]  # its writer is gone too
