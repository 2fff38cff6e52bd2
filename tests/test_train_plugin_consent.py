"""A run folder never runs code it names: ``plugins`` saved in ``last.pt`` need ``--plugin`` or ``--trust-plugins``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ferkit.checkpoint import read_checkpoint, save_checkpoint
from ferkit.cli.main import main
from ferkit.errors import ConfigError
from ferkit.train import load_config, save_config, train
from tests._engine_helpers import TINY_PLUGIN, make_folder_dataset, tiny_overrides

EVIL = "ferkit_test_marker_plugin"  # module name of the planted plugin (unique: never imported otherwise)


@pytest.fixture
def planted_run(tmp_path, monkeypatch):
    """A finished 1-epoch run whose last.pt was edited to name ``plugins/<EVIL>.py``, a file that writes a marker.

    The current folder is ``tmp_path/work``, where the relative plugin path resolves."""
    root = make_folder_dataset(tmp_path / "data", n_train=4, n_val=2)
    run = tmp_path / "run"
    train(load_config(overrides=tiny_overrides(root, run, **{"train.epochs": 1})))
    marker = tmp_path / "marker.txt"
    work = tmp_path / "work"
    (work / "plugins").mkdir(parents=True)
    (work / "plugins" / f"{EVIL}.py").write_text(f"from pathlib import Path\nPath({str(marker)!r}).write_text('ran')\n")
    ckpt = read_checkpoint(run / "last.pt")
    ckpt["training"]["config"]["plugins"].append(f"plugins/{EVIL}.py")
    save_checkpoint(ckpt, run / "last.pt")  # still a weights_only-safe file
    monkeypatch.chdir(work)
    monkeypatch.delitem(sys.modules, EVIL, raising=False)
    yield run, marker
    sys.modules.pop(EVIL, None)


def test_resume_refuses_plugins_named_by_the_run(planted_run, capsys):
    run, marker = planted_run
    assert main(["train", "--resume", str(run)]) == 2
    err = capsys.readouterr().err
    assert not marker.exists() and EVIL not in sys.modules
    assert f"plugins/{EVIL}.py" in err and str(Path.cwd() / "plugins" / f"{EVIL}.py") in err  # named and resolved
    assert "--plugin" in err and "--trust-plugins" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(ConfigError, match="trust_plugins=True"):
        train(resume=run)
    assert not marker.exists()


@pytest.mark.parametrize("consent", ["plugin", "trust"])
def test_resume_with_consent_runs_the_plugin(planted_run, capsys, consent):
    run, marker = planted_run
    stale = run / ".last.pt.999999999.abcdefgh.tmp"  # left by a save that was killed (no such process)
    stale.write_bytes(b"x" * 1000)
    extra = ["--plugin", str(Path.cwd() / "plugins" / f"{EVIL}.py")] if consent == "plugin" else ["--trust-plugins"]
    assert main(["train", "--resume", str(run), *extra]) == 0, capsys.readouterr().err
    assert marker.read_text() == "ran" and "run folder:" in capsys.readouterr().out
    assert not stale.exists()


@pytest.mark.slow
def test_resume_in_a_new_process_refuses_too(planted_run, tmp_path):
    """What a user runs: `ferkit train --resume` in a fresh interpreter (nothing imported yet)."""
    run, marker = planted_run
    proc = subprocess.run([sys.executable, "-m", "ferkit", "train", "--resume", str(run)], capture_output=True,
                          text=True, timeout=300, cwd=Path.cwd())
    assert proc.returncode == 2 and not marker.exists()
    assert "_tiny_fer_model.py" in proc.stderr and f"{EVIL}.py" in proc.stderr  # every unconsented plugin is named


def test_fresh_run_records_a_command_line_plugin_by_absolute_path(tmp_path, monkeypatch, capsys):
    root = make_folder_dataset(tmp_path / "data", n_train=4, n_val=2)
    recipe = save_config(load_config(overrides={**tiny_overrides(root, tmp_path / "run", **{"train.epochs": 1}),
                                                "plugins": []}), tmp_path / "recipe.yaml")
    monkeypatch.chdir(Path(TINY_PLUGIN).parent)
    assert main(["train", str(recipe), "--plugin", Path(TINY_PLUGIN).name]) == 0, capsys.readouterr().err
    assert read_checkpoint(tmp_path / "run" / "last.pt")["training"]["config"]["plugins"] == [TINY_PLUGIN]
