"""Runtimes behind ``ferkit.load(backend=...)``: the choice rule (``auto``, the defaults, refused combinations), the
OpenVINO backend against PyTorch (logits, any batch size, threads, several threads calling at once), the cached
fp32 export (made once, keyed by the weights), ``auto`` falling back to PyTorch when the export fails, and the CLI
flag."""

from __future__ import annotations

import json
import logging
import threading

import numpy as np
import pytest
import torch

import ferkit
from ferkit.cli._common import BACKENDS as CLI_BACKENDS
from ferkit.cli.main import main
from ferkit.errors import ConfigError
from ferkit.explain.api import explain
from ferkit.infer import precision as P
from tests.infer._helpers import TINY, fer_files

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


def _have(*names):
    return lambda name: name in names


@pytest.mark.parametrize("backend, precision, device, onnx_file, have, want", [
    (None, "fp32", CPU, False, ("openvino", "onnx", "torch"), "torch"),   # default unchanged: PyTorch
    (None, "fp32", CPU, True, ("openvino", "onnx", "torch"), "onnx"),     # an ONNX file: onnxruntime
    (None, "int8", CPU, False, ("openvino", "onnx", "torch"), "onnx"),    # int8 model: onnxruntime
    ("auto", "fp32", CPU, False, ("openvino", "onnx", "torch"), "openvino"),
    ("auto", "fp32", CPU, False, ("onnx", "torch"), "onnx"),
    ("auto", "fp32", CPU, False, ("torch",), "torch"),
    ("auto", "fp32", CPU, True, ("openvino", "onnx", "torch"), "openvino"),
    ("auto", "int8", CPU, False, ("openvino", "onnx", "torch"), "onnx"),  # the runtime its recipe was measured with
    ("auto", "int8", CPU, False, ("openvino", "torch"), "openvino"),
    ("auto", "bf16", CPU, False, ("openvino", "onnx", "torch"), "torch"),
    ("auto", "fp32", CUDA, False, ("openvino", "onnx", "torch"), "torch"),
    ("auto", "fp32", CUDA, True, ("openvino", "onnx", "torch"), "onnx"),
    ("openvino", "fp32", CPU, False, ("torch",), "openvino"),  # explicit: no silent substitution
    ("onnx", "int8", CPU, True, ("openvino", "onnx", "torch"), "onnx"),
])
def test_choose_backend_rule(backend, precision, device, onnx_file, have, want):
    choice = P.choose_backend(backend, precision, device, onnx_file=onnx_file, available=_have(*have))
    assert choice.name == want and choice.reason


@pytest.mark.parametrize("backend, precision, device, onnx_file, match", [
    ("torch", "fp32", CPU, True, "ONNX file runs with backend 'onnx' or 'openvino'"),
    ("torch", "int8", CPU, False, "int8 models run with backend 'onnx' or 'openvino'"),
    ("openvino", "bf16", CPU, False, "precision 'bf16' runs with backend 'torch'"),
    ("onnx", "fp16", CUDA, False, "precision 'fp16' runs with backend 'torch'"),
    ("openvino", "fp32", CUDA, False, "OpenVINO backend runs on the CPU"),
    ("auto", "fp32", CPU, True, "needs onnxruntime or openvino"),
])
def test_choose_backend_refusals(backend, precision, device, onnx_file, match):
    with pytest.raises(ConfigError, match=match):
        P.choose_backend(backend, precision, device, onnx_file=onnx_file, available=_have("torch"))


def test_backend_names_and_aliases():
    assert CLI_BACKENDS == P.BACKENDS  # the CLI's copy (no torch import there) stays the same
    assert [P.canonical_backend(b) for b in ("ORT", "onnxruntime", "ov", "PyTorch", None)] == \
        ["onnx", "onnx", "openvino", "torch", None]
    with pytest.raises(ConfigError, match="unknown backend 'tensorrt'; expected one of auto, torch, onnx, openvino"):
        P.canonical_backend("tensorrt")


# ---- the OpenVINO backend on a real model -------------------------------------------------------------------------
ov = pytest.importorskip("openvino")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")


@pytest.fixture(scope="module")
def ov_rec(tiny_ckpt):
    return ferkit.load(TINY, checkpoint=tiny_ckpt, detector="none", backend="openvino")


def test_openvino_matches_torch_at_any_batch(ov_rec, tiny_ckpt):
    ref = ferkit.load(TINY, checkpoint=tiny_ckpt, detector="none", backend="torch")
    assert ov_rec.backend.name == "openvino" and ref.backend.name == "torch"
    assert ov_rec.label_names == ref.label_names and ov_rec.backend.precision == "fp32"
    g = torch.Generator().manual_seed(3)
    for batch in (1, 5, 2):  # one compiled model, dynamic batch
        x = torch.randn(batch, 3, 224, 224, generator=g)
        got, want = ov_rec.backend.logits(x), ref.backend.logits(x)
        assert got.shape == want.shape == (batch, len(ref.label_names)) and got.dtype == torch.float32
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
        assert (got - want).abs().max() < (want.std() * 1e-3)  # not two constant outputs agreeing


def test_openvino_threads_and_concurrent_calls(ov_rec):
    from ferkit.infer.backends import openvino_config

    assert int(ov_rec.backend.compiled.get_property("INFERENCE_NUM_THREADS")) == ov_rec.backend.threads
    # fp32 pinned: OpenVINO would run bf16 on CPUs with AMX / AVX512-BF16 (not this one, so check the options)
    config = {k: str(v.value if hasattr(v, "value") else v) for k, v in openvino_config(3).items()}
    assert config["INFERENCE_PRECISION_HINT"] == "<Type: 'float32'>" and config["INFERENCE_NUM_THREADS"] == "3", config
    xs = [torch.randn(3, 3, 224, 224, generator=torch.Generator().manual_seed(i)) for i in range(4)]
    want = [ov_rec.backend.logits(x) for x in xs]
    got: dict[int, torch.Tensor] = {}

    def call(i):
        for _ in range(3):
            got[i] = ov_rec.backend.logits(xs[i])

    threads = [threading.Thread(target=call, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(4):
        torch.testing.assert_close(got[i], want[i])


def test_fp32_export_is_cached_by_weights(tiny, caplog):
    caplog.set_level(logging.INFO, logger="ferkit.infer.precision")
    first = P.fp32_model(tiny)
    assert "exporting" in caplog.text and first.is_file() and first.with_name(first.name + ".json").is_file()
    caplog.clear()
    mtime = first.stat().st_mtime_ns
    assert P.fp32_model(tiny) == first and first.stat().st_mtime_ns == mtime and "from the cache" in caplog.text
    other = type(tiny)().eval()
    with torch.no_grad():
        other.load_state_dict(tiny.state_dict())
        next(other.parameters()).add_(0.01)  # other weights, other file
    assert P.fp32_model(other) != first


def test_auto_uses_openvino_and_falls_back_to_torch(tiny_ckpt, monkeypatch, caplog):
    rec = ferkit.load(TINY, checkpoint=tiny_ckpt, detector="none", precision="auto")  # precision auto -> backend auto
    assert rec.backend.name == "openvino" and "OpenVINO" in rec.backend.backend_reason

    def broken(net):
        raise RuntimeError("exporter exploded")

    monkeypatch.setattr("ferkit.infer.api.fp32_model", broken)
    with caplog.at_level(logging.WARNING, logger="ferkit.infer.api"):
        rec = ferkit.load(TINY, checkpoint=tiny_ckpt, detector="none", backend="auto")
    assert rec.backend.name == "torch" and "exporter exploded" in caplog.text
    with pytest.raises(RuntimeError, match="exporter exploded"):  # asked for by name: no silent substitution
        ferkit.load(TINY, checkpoint=tiny_ckpt, detector="none", backend="openvino")


def test_openvino_refuses_gpu_and_explanations(tiny_ckpt, ov_rec, fer2013_root):
    with pytest.raises(ConfigError, match="OpenVINO backend runs on the CPU, not on cuda"):
        P.choose_backend("openvino", "fp32", CUDA, onnx_file=False)
    with pytest.raises(ValueError, match="explanations need the PyTorch backend, not 'openvino'"):
        explain(ov_rec, fer_files(fer2013_root, 1)[0])


def test_onnx_file_with_fixed_batch_runs_at_any_batch(tmp_path, tiny):
    """A file exported with a fixed batch (another tool's export) gets a dynamic batch dimension."""
    from ferkit.export.onnx import export_onnx
    from ferkit.export.sidecar import read_sidecar, write_sidecar

    path = tmp_path / "fixed.onnx"
    export_onnx(tiny, path)
    meta = read_sidecar(path)
    import onnx

    m = onnx.load(str(path))
    for value in (m.graph.input[0], m.graph.output[0]):
        value.type.tensor_type.shape.dim[0].dim_value = 2  # batch pinned to 2
    onnx.save(m, str(path))
    write_sidecar(path, meta)
    rec = ferkit.load(path, detector="none", backend="openvino")
    x = torch.randn(3, 3, 224, 224)
    with torch.inference_mode():
        want = tiny(x)
    torch.testing.assert_close(rec.backend.logits(x), want, atol=1e-4, rtol=1e-4)


def test_cli_predict_backend_flag(capsys, tiny_ckpt, fer2013_root):
    files = [str(f) for f in fer_files(fer2013_root, 2)]
    out = {}
    for backend in ("torch", "openvino"):
        assert main(["predict", *files, "--model", TINY, "--checkpoint", str(tiny_ckpt), "--detector", "none",
                     "--backend", backend, "--format", "jsonl"]) == 0
        out[backend] = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert len(out["torch"]) == len(out["openvino"]) == 2
    for a, b in zip(out["torch"], out["openvino"]):
        assert a["faces"][0]["label"] == b["faces"][0]["label"]
        np.testing.assert_allclose(list(a["faces"][0]["scores"].values()), list(b["faces"][0]["scores"].values()),
                                   atol=1e-4)
    with pytest.raises(SystemExit):
        main(["predict", files[0], "--backend", "tensorrt"])
