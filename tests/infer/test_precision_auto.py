"""``precision="auto"``: the rule of :func:`ferkit.device.choose_precision` on faked CPU flag sets (each branch), the
CPU flag reader, and what ``ferkit.load`` / the CLI make of ``auto`` and ``int8`` before any model is built."""

from __future__ import annotations

import logging

import pytest
import torch

import ferkit
from ferkit import device as D
from ferkit.cli._common import INFERENCE_PRECISIONS
from ferkit.errors import ConfigError
from ferkit.infer.precision import canonical, for_torch_model

CPU = torch.device("cpu")
# /proc/cpuinfo flag sets of real CPU families (trimmed to the flags that matter)
SAPPHIRE_RAPIDS = {"avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8"}
COOPER_LAKE = {"avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16"}
CASCADE_LAKE = {"avx2", "fma", "avx512f", "avx512_vnni"}
ALDER_LAKE = {"avx2", "fma", "avx_vnni"}
EPYC_ZEN2 = {"avx2", "fma"}  # this project's machines
OLD_X86 = {"sse4_2"}


@pytest.mark.parametrize("flags,int8,expected", [
    (SAPPHIRE_RAPIDS, False, "bf16"),
    (SAPPHIRE_RAPIDS, True, "bf16"),  # native bf16 first: no calibration, closer to fp32
    (COOPER_LAKE, True, "bf16"),
    (CASCADE_LAKE, True, "int8"),
    (CASCADE_LAKE, False, "fp32"),
    (ALDER_LAKE, True, "int8"),
    (EPYC_ZEN2, True, "fp32"),  # AVX2 without VNNI: int8 is not faster at the required agreement (measured)
    (EPYC_ZEN2, False, "fp32"),
    (OLD_X86, False, "fp32"),
    (set(), True, "fp32"),
])
def test_auto_rule_on_cpu_flag_sets(flags, int8, expected):
    choice = D.choose_precision(CPU, int8_available=int8, flags=flags)
    assert choice.precision == expected
    assert choice.reason  # always says why


def test_auto_reasons_name_the_deciding_flags():
    assert "amx_bf16" in D.choose_precision(CPU, flags=SAPPHIRE_RAPIDS).reason
    assert "avx512_vnni" in D.choose_precision(CPU, int8_available=True, flags=CASCADE_LAKE).reason
    assert "no int8 model" in D.choose_precision(CPU, flags=CASCADE_LAKE).reason
    assert "AVX2" in D.choose_precision(CPU, flags=EPYC_ZEN2).reason
    assert "no AVX2" in D.choose_precision(CPU, flags=OLD_X86).reason


def test_auto_on_gpus(monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "Fake GPU")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert D.choose_precision(torch.device("cuda"), flags=set()) == D.PrecisionChoice(
        "bf16", "CUDA device Fake GPU supports bf16")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert D.choose_precision(torch.device("cuda"), int8_available=True).precision == "fp32"
    assert D.choose_precision(torch.device("mps"), flags=SAPPHIRE_RAPIDS).precision == "fp32"


def test_resolve_precision_auto_is_the_same_rule_without_int8(monkeypatch):
    monkeypatch.setattr(D, "cpu_flags", lambda: frozenset(SAPPHIRE_RAPIDS))
    assert D.resolve_precision("auto", "cpu") == "bf16"
    monkeypatch.setattr(D, "cpu_flags", lambda: frozenset(CASCADE_LAKE))
    assert D.resolve_precision("auto", "cpu") == "fp32"  # autocast has no int8


def test_cpu_flags_from_proc_cpuinfo_or_torch(monkeypatch, tmp_path):
    flags = D.cpu_flags()
    assert isinstance(flags, frozenset) and all(f == f.lower() for f in flags)
    if torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512"):
        assert "avx2" in flags
    D.cpu_flags.cache_clear()
    try:
        real_open = open

        def no_proc(path, *a, **k):
            if str(path) == "/proc/cpuinfo":
                raise OSError("no such file")
            return real_open(path, *a, **k)

        monkeypatch.setattr("builtins.open", no_proc)
        monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")
        assert D.cpu_flags() == {"avx2", "avx512f"}
    finally:
        D.cpu_flags.cache_clear()


def test_the_cli_offers_the_same_precisions():
    assert INFERENCE_PRECISIONS == D.INFERENCE_PRECISIONS


def test_torch_model_precisions():
    assert for_torch_model(None, CPU) == D.PrecisionChoice("fp32", "the default (no autocast)")
    assert for_torch_model("bfloat16", CPU) == D.PrecisionChoice("bf16", "requested")
    assert canonical("bfloat16") == "bf16" and canonical(None) is None
    with pytest.raises(ConfigError, match="unknown precision 'int4'"):
        canonical("int4")
    with pytest.raises(ConfigError, match="needs a GPU"):
        for_torch_model("fp16", CPU)
    with pytest.raises(ConfigError, match=r"needs an int8 model: pass calibrate=DIR .* --int8 --calibrate DIR"):
        for_torch_model("int8", CPU)
    with pytest.raises(ConfigError, match="runs on the CPU"):
        for_torch_model("int8", torch.device("cuda"), calibrate="faces/")


def test_load_auto_says_what_it_chose(monkeypatch, caplog):
    monkeypatch.setattr(D, "cpu_flags", lambda: frozenset(EPYC_ZEN2))
    with caplog.at_level(logging.INFO, logger="ferkit"):
        rec = ferkit.load(detector="none", device="cpu", precision="auto")
    assert rec.precision == "fp32" and "AVX2" in rec.backend.precision_reason
    assert any(r.getMessage().startswith("precision fp32: the CPU has AVX2") for r in caplog.records)
    assert ferkit.load(detector="none", device="cpu").precision == "fp32"  # default: no autocast


def test_load_int8_without_calibration_names_what_is_needed():
    with pytest.raises(ConfigError, match="calibrate=DIR"):
        ferkit.load(detector="none", device="cpu", precision="int8")
