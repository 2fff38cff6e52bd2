"""``ferkit bench``: the table's rows and columns, agreement vs fp32, error rows, the official code from a (fake)
checkout, the ferkit -> official key mapping. Timings are printed by the command, never asserted here."""

from __future__ import annotations

import json
import re
import sys
import types

import pytest
import torch

from ferkit.cli.main import main
from ferkit.errors import CheckpointError
from ferkit.infer.bench import COLUMNS, OFFICIAL, _model_options, bench, format_table, system_info
from ferkit.models.poster_v2.adapter import DEAD_PATTERNS, ferkit_to_official, official_to_ferkit
from tests.infer._helpers import TINY
from tests.reference import poster_v2_official as ref
from tests.reference.poster_v2_checkout import write_checkout

KEYS = [k for k, _ in COLUMNS]


def test_rows_columns_fp32_agreement_and_refused_precisions():
    rows = bench([TINY], precisions=["fp32", "bf16", "fp16", "int4"], batches=[3, 1], threads=[1, 2], repeats=2)
    assert all(set(KEYS) <= set(r) for r in rows)
    ok = [(r["threads"], r["precision"], r["batch"]) for r in rows if r["error"] is None]
    assert ok == [(t, p, b) for t in (1, 2) for p in ("fp32", "bf16") for b in (1, 3)]
    for r in rows:
        if r["error"] is None:
            assert r["model"] == TINY and r["ms_per_image"] > 0 and r["faces_per_s"] > 0 and len(r["times_ms"]) == 2
            assert 0.0 <= r["top1_agreement"] <= 100.0 and r["peak_rss_mb"] > 0
        if r["precision"] == "fp32":  # the same model in fp32 on the same inputs: identical
            assert r["top1_agreement"] == 100.0 and r["max_prob_diff"] == 0.0
    assert any(r["precision"] == "bf16" and r["max_prob_diff"] > 0 for r in rows)  # a real comparison
    errors = {r["precision"]: r["error"] for r in rows if r["error"] is not None and r["threads"] == 1}
    assert "needs a GPU" in errors["fp16"] and "int4" in errors["int4"]
    assert all(r["ms_per_image"] is None for r in rows if r["error"] is not None)
    table = format_table(rows, system_info())
    assert table.count(f"| {TINY} |") == len(rows)
    assert "| model | precision | backend | batch | threads | ms/img | faces/s | % fp32 peak |" in table
    assert re.search(r"flags: .*torch kernels: ", table) and "intra-op threads" in table and "peak RSS" in table


def test_backends_flops_and_percent_of_peak():
    """Each precision runs with each runtime; % fp32 peak = GFLOP/img (counted) x faces/s / measured matmul peak."""
    pytest.importorskip("openvino")
    pytest.importorskip("onnxruntime")
    from ferkit.infer.bench import count_gflop, format_peak, matmul_gflops

    lin = torch.nn.Linear(64, 10)  # 2 * 64 * 10 FLOPs per image
    assert count_gflop(lin, torch.randn(5, 64)) == pytest.approx(2 * 64 * 10 / 1e9)
    assert count_gflop(lambda x: torch.from_numpy(x.numpy() * 2), torch.randn(2, 3)) is None  # no torch op counted
    assert matmul_gflops(size=128, repeats=2) > 0.1
    rows = bench([TINY], precisions=["fp32", "bf16"], batches=[2], threads=[1],
                 backends=["torch", "openvino", "auto"], repeats=1)
    by = {(r["precision"], r["backend"]): r for r in rows}
    assert set(by) == {(p, b) for p in ("fp32", "bf16") for b in ("torch", "openvino", "auto")}
    assert by["fp32", "openvino"]["error"] is None and by["fp32", "openvino"]["backend_used"] == "openvino"
    assert by["fp32", "openvino"]["top1_agreement"] == 100.0 and 0 < by["fp32", "openvino"]["max_prob_diff"] < 1e-4
    assert by["fp32", "auto"]["backend_used"] == "openvino" and by["bf16", "auto"]["backend_used"] == "torch"
    assert "runs with backend 'torch'" in by["bf16", "openvino"]["error"]
    for r in rows:
        if r["error"] is None:
            want = 100 * r["gflop_per_image"] * r["faces_per_s"] / r["peak_gflops"]
            assert r["percent_of_peak"] == pytest.approx(want, rel=0.05, abs=0.05)
            assert r["gflop_per_image"] == rows[0]["gflop_per_image"] > 0  # counted once, on the PyTorch model
    assert "| auto (openvino) |" in format_table(rows) and "GFLOP/s at 1 thread" in format_peak(rows)


def test_real_images_as_inputs_and_a_model_that_fails_to_build(photos, tmp_path):
    folder = tmp_path / "faces"
    folder.mkdir()
    for name in ("astronaut", "grey"):
        (folder / photos[name].name).write_bytes(photos[name].read_bytes())
    rows = bench([TINY, "no_such_model"], batches=[3], repeats=1, images=folder)
    assert rows[0]["error"] is None and rows[0]["top1_agreement"] == 100.0 and rows[0]["max_prob_diff"] == 0.0
    assert rows[1]["model"] == "no_such_model" and "no_such_model" in rows[1]["error"]
    with pytest.raises(FileNotFoundError, match="images folder"):
        bench([TINY], images=tmp_path / "missing")


def test_auto_and_int8_pass_through_to_load(photos, tmp_path):
    """What ``auto`` chose is reported; int8 runs when calibration images are given and is compared with fp32."""
    folder = tmp_path / "calib"
    folder.mkdir()
    for name in ("astronaut", "grey"):
        (folder / photos[name].name).write_bytes(photos[name].read_bytes())
    rows = bench([TINY], precisions=["auto", "int8"], batches=[2], repeats=1, calibrate=folder)
    auto, int8 = rows
    assert auto["error"] is None and auto["precision_used"] in ("fp32", "bf16")  # the CPU's choice
    assert f"| auto ({auto['precision_used']}) |" in format_table(rows)
    assert int8["error"] is None and int8["precision_used"] == "int8" and 0 <= int8["max_prob_diff"] < 0.5
    assert "calibrate" in bench([TINY], precisions=["int8"], batches=[1], repeats=1)[0]["error"]


def test_overrides_scoped_to_one_model():
    opts = _model_options("mpa_fer_vit_b16", None, {"mpa_fer_vit_b16:clip_weights": "random", "poster_v2:x": 1,
                                                    "shared": 2}, False, False)
    assert opts["clip_weights"] == "random" and opts["shared"] == 2 and "x" not in opts
    assert _model_options("poster_v2.rafdb", "c.pt", None, False, False)["checkpoint"] is None  # tagged: own weights
    assert _model_options("poster_v2", "c.pt", None, False, False)["checkpoint"] == "c.pt"


def test_ferkit_to_official_inverts_the_adapter():
    official = ref.random_official_state_dict(7, seed=3)
    ferkit_sd, dropped = official_to_ferkit(official)
    back = ferkit_to_official(ferkit_sd)
    live = {k for k in official if not any(re.match(p, k) for p in DEAD_PATTERNS)}
    assert set(back) == live and len(dropped) == len(official) - len(live)
    assert all(torch.equal(back[k], official[k]) for k in live)
    with pytest.raises(CheckpointError, match="no official POSTER_V2 counterpart"):
        ferkit_to_official({**ferkit_sd, "image_stream_adapter.weight": torch.zeros(1)})


def test_official_code_from_a_checkout_side_by_side(tmp_path, poster_ckpt, monkeypatch):
    """The official layout (models/PosterV2_7cls.py importing its siblings, backbone files read in the constructor from
    a Windows path, thop imported) runs with ferkit's weights; agreement vs ferkit fp32."""
    import importlib.util

    checkout = write_checkout(tmp_path / "POSTER_V2")
    other = types.ModuleType("models")  # the user's own `models` package must survive the import
    monkeypatch.setitem(sys.modules, "models", other)
    find_spec = importlib.util.find_spec  # thop (imported by the official file) is not installed: a stub stands in
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "thop" else find_spec(name, *a))
    monkeypatch.delitem(sys.modules, "thop", raising=False)
    rows = bench(["poster_v2"], batches=[2], repeats=1, warmup=0, official_src=checkout, checkpoint=poster_ckpt,
                 precisions=["fp32", "fp16"])
    by = {(r["model"], r["precision"]): r for r in rows}
    assert [r["model"] for r in rows] == ["poster_v2", "poster_v2", OFFICIAL, OFFICIAL]
    off = by[(OFFICIAL, "fp32")]
    assert off["error"] is None and off["batch"] == 2 and off["ms_per_image"] > 0
    assert off["top1_agreement"] == 100.0 and off["max_prob_diff"] < 1e-5
    assert "needs a GPU" in by[(OFFICIAL, "fp16")]["error"]
    assert sys.modules["models"] is other and "thop" not in sys.modules


def test_official_src_that_is_not_a_checkout_fails_before_timing(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a POSTER_V2 checkout"):
        bench([TINY], official_src=tmp_path)
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "PosterV2_7cls.py").write_text("from .missing_module import Backbone\n")
    rows = bench(["poster_v2"], batches=[1], repeats=1, warmup=0, official_src=tmp_path)
    assert [(r["model"], r["error"] is None) for r in rows] == [("poster_v2", True), (OFFICIAL, False)]
    assert "cannot import the official POSTER_V2 code" in rows[1]["error"]


def test_cli_prints_the_table_and_writes_json(tmp_path, capsys):
    out = tmp_path / "rows.json"
    code = main(["bench", "--model", TINY, "--batch", "2", "--repeats", "1", "--precision", "fp32", "fp16",
                 "--threads", "1", "--json", str(out)])
    text = capsys.readouterr().out
    assert code == 0 and "| model | precision |" in text and "torch kernels" in text and "peak RSS" in text
    assert re.search(rf"\| {TINY} \| fp32 \| torch \| 2 \| 1 \| [\d.]+ \| [\d.]+ \| [\d.]+ \| 100.0 \| 0.0 \|", text)
    assert "needs a GPU" in text
    saved = json.loads(out.read_text())
    assert saved["system"]["threads"] == 1 and [r["precision"] for r in saved["rows"]] == ["fp32", "fp16"]
    with pytest.raises(SystemExit) as e:
        main(["bench", "--help"])
    assert e.value.code == 0 and "--official-src" in capsys.readouterr().out
