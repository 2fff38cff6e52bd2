"""CLI basics: help, models, info (parameter counts and MACs against independent references)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

import ferkit
from ferkit.cli.main import main
from ferkit.models.info import model_info, thop_count


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for cmd in ("info", "models"):
        assert cmd in out


def test_python_dash_m_entry_point():
    r = subprocess.run([sys.executable, "-m", "ferkit", "--version"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.startswith("ferkit ")


def test_models_json(capsys):
    code, out, _ = run_cli(capsys, "models", "--json")
    names = [r["name"] for r in json.loads(out)]
    assert code == 0 and names == ferkit.list_models()


@pytest.mark.slow
def test_info_poster_v2_json(capsys):
    code, out, _ = run_cli(capsys, "info", "poster_v2", "--json")
    info = json.loads(out)
    assert code == 0
    # Official model: 58,316,594 parameters of which 14,562,653 never affect the logits
    # (docs/poster_v2.md#r3-dead-modules, #r4-parameter-counts).
    # ferkit omits the dead modules except the landmark GDC head (96,016), kept so the landmark file loads strictly.
    assert info["params_total"] == 58_316_594 - 14_562_653 + 96_016
    assert info["params_effective"] == 43_753_941  # official model: docs/poster_v2.md#r4-parameter-counts
    assert info["params_trainable"] == info["params_total"] - 1_007_248  # MobileFaceNet is frozen
    # thop counts executed leaf modules only: the official 43,724,311 minus the GDC head ferkit does not execute
    assert info["params_thop"] == 43_724_311 - 96_016
    assert 7.0e9 < info["macs_thop"] < info["macs"] < 8.7e9


def test_info_unknown_model_exit_code(capsys):
    code, _, err = run_cli(capsys, "info", "nope")
    assert code == 2 and "unknown model 'nope'" in err


def test_info_bad_override(capsys):
    code, _, err = run_cli(capsys, "info", "poster_v2", "--set", "vit_depht=3")
    assert code == 2 and "vit_depht" in err


def test_thop_style_count_matches_thop():
    thop = pytest.importorskip("thop")
    model = ferkit.create_model("poster_v2_no_vit")
    x = torch.randn(1, 3, 224, 224)
    macs, params = thop.profile(model, (x,), verbose=False)
    assert (int(macs), int(params)) == thop_count(model, x)


def test_real_macs_against_hand_count():
    conv = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.Flatten(), torch.nn.Linear(8 * 4 * 4, 5))
    conv.data_config = {"input_size": 4}
    info = model_info(conv)
    assert info["macs"] == 8 * 16 * 3 * 9 + 128 * 5
    assert info["params_effective"] == info["params_total"] == 8 * 27 + 8 + 128 * 5 + 5
