"""``ferkit.checkpoint.load_state_dict_strict`` / ``check_state_dict``: the one strict state-dict loader. Every missing
key, unexpected key and shape mismatch is named in one ``CheckpointError``; nothing is loaded when anything is wrong."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ferkit.checkpoint import check_state_dict, load_state_dict_strict
from ferkit.convert.openvino_ir import IRError
from ferkit.errors import CheckpointError


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))


def test_every_kind_of_problem_is_named_at_once():
    net = _net()
    sd = {k: v.clone() for k, v in net.state_dict().items()}
    del sd["0.bias"], sd["2.weight"]  # two missing
    sd["extra.weight"] = torch.zeros(1)  # one unexpected
    sd["0.weight"] = torch.zeros(5, 3)  # one shape mismatch
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with pytest.raises(CheckpointError) as info:
        load_state_dict_strict(net, sd, what="my.pt")
    msg = str(info.value)
    assert msg.startswith("my.pt does not fit the model: ")
    assert "1 shape mismatch(es): 0.weight: checkpoint (5, 3) vs model (4, 3)" in msg
    assert "2 missing key(s): 0.bias, 2.weight" in msg
    assert "1 unexpected key(s): extra.weight" in msg
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())  # nothing half-loaded


def test_a_fitting_state_loads_cast_to_the_model_dtypes_and_is_reported():
    src, net = _net(), _net()
    with torch.no_grad():
        for p in src.parameters():
            p.add_(1.0)
    sd = {k: (v.double() if v.is_floating_point() else v) for k, v in src.state_dict().items()}
    del sd["1.num_batches_tracked"]  # optional by default: BatchNorm's counter does not change outputs
    report = load_state_dict_strict(net, sd)
    assert report == {"loaded": len(sd), "per_part": {"0": 2, "1": 4, "2": 2}}
    for k, v in net.state_dict().items():
        assert v.dtype == src.state_dict()[k].dtype
        if k != "1.num_batches_tracked":
            assert torch.equal(v, src.state_dict()[k])


def test_ignore_missing_optional_hint_and_error_class():
    net = _net()
    sd = {k: v for k, v in net.state_dict().items() if not k.startswith("2.")}
    with pytest.raises(CheckpointError, match=r"2 missing key\(s\): 2\.weight, 2\.bias"):
        load_state_dict_strict(net, sd)
    assert load_state_dict_strict(net, sd, ignore_missing=("2.",))["loaded"] == len(sd)  # e.g. a reset head
    full = dict(net.state_dict())
    del full["1.num_batches_tracked"]
    want = r"converted does not fit the model \(MobileFaceNet\): 1 missing key\(s\): 1\.num_batches_tracked"
    with pytest.raises(IRError, match=want):
        check_state_dict(net.state_dict(), full, what="converted", optional=(), hint="MobileFaceNet", error=IRError)


def test_more_than_the_listed_names_are_counted_and_elided():
    own = {f"k{i}": torch.zeros(1) for i in range(20)}
    with pytest.raises(CheckpointError) as info:
        check_state_dict(own, {})
    assert "20 missing key(s): k0, k1" in str(info.value) and "k11 ..." in str(info.value)
    assert "k12" not in str(info.value)

