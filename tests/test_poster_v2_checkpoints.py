"""POSTER++ checkpoint adapters: official layouts, ferkit format, backbone files, and clear errors."""

from __future__ import annotations

import sys

import pytest
import torch

import ferkit
from ferkit.checkpoint import read_checkpoint
from ferkit.errors import CheckpointError
from ferkit.models.poster_v2 import load_ir50, load_mobilefacenet
from ferkit.models.poster_v2.ir50 import IR50
from ferkit.nn.mobilefacenet import MobileFaceNet
from tests.reference import poster_v2_official as ref


@pytest.fixture(scope="module")
def sd7():
    return ref.random_official_state_dict(7, seed=4)


@pytest.fixture(scope="module")
def x():
    return torch.randn(1, 3, 112, 112, generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def logits7(sd7, x):
    with torch.no_grad():
        return ref.forward(x, sd7)


@pytest.fixture(scope="module")
def training_file(sd7, tmp_path_factory):
    """An official per-epoch training checkpoint: module. keys + pickled __main__.RecorderMeter objects."""
    main = sys.modules["__main__"]
    cls = type("RecorderMeter", (), {"__module__": "__main__"})
    main.RecorderMeter = cls
    try:
        rec = cls()
        rec.epoch_losses = [[1.0, 2.0]]
        obj = {"epoch": 12, "state_dict": {"module." + k: v for k, v in sd7.items()},
               "best_acc": torch.tensor(91.5), "optimizer": {"state": {}, "param_groups": []},
               "recorder1": rec, "recorder": rec}
        path = tmp_path_factory.mktemp("ckpt") / "raf-db-model_best_epoch12.pth"
        torch.save(obj, path)
    finally:
        delattr(main, "RecorderMeter")
    return path


def _logits(model, x):
    with torch.no_grad():
        return model.eval()(x)


def test_training_checkpoint_refused_without_trust(training_file):
    with pytest.raises(CheckpointError, match="--trust-checkpoint"):
        ferkit.create_model("poster_v2", checkpoint=training_file)


def test_training_checkpoint_loads_with_trust(training_file, x, logits7):
    model = ferkit.create_model("poster_v2", checkpoint=training_file, trust_checkpoint=True)
    assert (_logits(model, x) - logits7).abs().max() <= 1e-4
    assert model.load_report["format"] == "official" and model.load_report["dropped_dead_keys"] == 24


def test_bare_state_dict_file_weights_only(sd7, x, logits7, tmp_path):
    path = tmp_path / "bare.pth"
    torch.save({"module." + k: v for k, v in sd7.items()}, path)
    model = ferkit.create_model("poster_v2", checkpoint=path)
    assert (_logits(model, x) - logits7).abs().max() <= 1e-4


def test_missing_key_is_named(sd7):
    bad = {k: v for k, v in sd7.items() if k != "ffn2.gamma1"}
    with pytest.raises(CheckpointError, match=r"missing key\(s\): fusion\.1\.gamma1"):
        ferkit.create_model("poster_v2", checkpoint=bad)


def test_unexpected_key_is_named(sd7):
    bad = dict(sd7)
    bad["VIT.extra_head.weight"] = torch.zeros(3)
    with pytest.raises(CheckpointError, match="unexpected key.*fuser.extra_head.weight"):
        ferkit.create_model("poster_v2", checkpoint=bad)


def test_shape_mismatch_is_named(sd7):
    with pytest.raises(CheckpointError, match="shape mismatch.*relative_position_bias_table"):
        ferkit.create_model("poster_v2", checkpoint=sd7, window_size=(14, 7, 7))


def test_tampered_position_index(sd7):
    bad = dict(sd7)
    bad["attn3.relative_position_index"] = bad["attn3.relative_position_index"].flip(0)
    with pytest.raises(CheckpointError, match="relative-position formula"):
        ferkit.create_model("poster_v2", checkpoint=bad)


def test_wrong_class_count(sd7):
    with pytest.raises(CheckpointError, match="7-class head but num_classes=8"):
        ferkit.create_model("poster_v2", checkpoint=sd7, num_classes=8)
    model = ferkit.create_model("poster_v2", checkpoint=sd7, num_classes=8, reset_head=True)
    assert model.num_classes == 8
    torch.testing.assert_close(model.se.linear1.weight, sd7["VIT.se_block.linear1.weight"])


def test_label_order_conflict(sd7, tmp_path):
    model = ferkit.create_model("poster_v2", checkpoint=sd7, label_names="caer_s")
    assert model.label_names[0] == "anger"  # official files carry no names: the caller's names are used
    path = model.save(tmp_path / "m.pt")
    with pytest.raises(CheckpointError, match="ordered"):
        ferkit.create_model("poster_v2", checkpoint=path, label_names="rafdb")


def test_optimizer_only_best_file(tmp_path):
    path = tmp_path / "raf-db-model_best.pth"
    torch.save({"state": {0: {"step": torch.tensor(3.0)}}, "param_groups": [{"lr": 3.5e-5, "params": [0]}]}, path)
    with pytest.raises(CheckpointError, match="only optimizer state"):
        ferkit.create_model("poster_v2", checkpoint=path)


def test_truncated_and_empty_files(sd7, tmp_path):
    good = tmp_path / "good.pth"
    torch.save({k: v for k, v in list(sd7.items())[:50]}, good)
    data = good.read_bytes()
    cut = tmp_path / "cut.pth"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        ferkit.create_model("poster_v2", checkpoint=cut)
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        read_checkpoint(empty)
    with pytest.raises(FileNotFoundError):
        read_checkpoint(tmp_path / "nope.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"this is not a checkpoint at all" * 10)
    with pytest.raises(CheckpointError):
        read_checkpoint(junk)


def test_not_a_poster_checkpoint():
    with pytest.raises(CheckpointError, match="not a POSTER"):
        ferkit.create_model("poster_v2", checkpoint={"visual.conv1.weight": torch.zeros(1)})


def test_checkpoint_of_another_model(tmp_path):
    model = ferkit.create_model("poster_v2")
    ck = model.checkpoint_dict()
    ck["model"] = "mpa_fer_vit_b16"
    with pytest.raises((CheckpointError, ValueError), match="mpa_fer_vit_b16"):
        ferkit.create_model("poster_v2", checkpoint=ck)


@pytest.mark.parametrize("suffix", [pytest.param(".pt", marks=pytest.mark.slow), ".safetensors"])
def test_ferkit_roundtrip(sd7, x, logits7, tmp_path, suffix):
    model = ferkit.create_model("poster_v2", checkpoint=sd7, label_names="rafdb")
    path = model.save(tmp_path / f"model{suffix}", note="test")
    again = ferkit.create_model("poster_v2", checkpoint=path)
    assert again.label_names == model.label_names
    assert (_logits(again, x) - logits7).abs().max() <= 1e-4
    assert again.load_report["format"] == "ferkit"


@pytest.mark.slow
def test_variant_checkpoint_restores_its_config(tmp_path):
    model = ferkit.create_model("poster_v2", vit_depth=4, num_classes=8)
    path = model.save(tmp_path / "deep.pt")
    again = ferkit.create_model("poster_v2", checkpoint=path)
    assert len(again.fuser.blocks) == 4 and again.num_classes == 8


# ---- backbone files ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("layout", ["stages", "sequence"])
def test_ir50_file_layouts(tmp_path, layout):
    shapes = ref.ir50_shapes(prefix="")
    g = torch.Generator().manual_seed(0)
    sd = {k: (torch.randn(s, generator=g) if s else torch.tensor(1)) for k, s in shapes.items()}
    if layout == "sequence":  # face.evoLVe layout: body.0..23 incl. stage 4
        starts = {"body1": 0, "body2": 3, "body3": 7}
        sd = {(f"body.{starts[k.split('.')[0]] + int(k.split('.')[1])}." + k.split(".", 2)[2]
               if k.startswith("body") else k): v for k, v in sd.items()}
        sd["body.22.res_layer.1.weight"] = torch.zeros(512, 512, 3, 3)
    path = tmp_path / "ir50.pth"
    torch.save({"state_dict": {"module." + k: v for k, v in sd.items()}}, path)
    net = IR50()
    counts = load_ir50(net, path)
    assert counts["body3"] == sum(1 for k in shapes if k.startswith("body3"))
    want = sd["body3.13.res_layer.3.weight" if layout == "stages" else "body.20.res_layer.3.weight"]
    torch.testing.assert_close(net.body3[13].res_layer[3].weight, want)


def test_ir50_file_missing_stage(tmp_path):
    shapes = ref.ir50_shapes(prefix="")
    sd = {k: torch.zeros(s) for k, s in shapes.items() if not k.startswith("body3.13")}
    path = tmp_path / "ir50.pth"
    torch.save(sd, path)
    with pytest.raises(CheckpointError, match="missing key.*body3.13"):
        load_ir50(IR50(), path)


def test_mobilefacenet_file(tmp_path):
    shapes = ref.mobilefacenet_shapes(prefix="")
    assert len(shapes) == 333
    sd = {k: (torch.rand(s) + 0.5 if s else torch.tensor(1)) for k, s in shapes.items()}
    path = tmp_path / "mobilefacenet_model_best.pth.tar"
    torch.save({"state_dict": sd, "epoch": 3, "optimizer": {"state": {}, "param_groups": []}}, path)
    net = MobileFaceNet()
    assert load_mobilefacenet(net, path)["loaded"] == 333
    torch.testing.assert_close(net.output_layer.linear.weight, sd["output_layer.linear.weight"])
    model = ferkit.create_model("poster_v2", landmark_weights=path)
    torch.testing.assert_close(model.landmark_net.conv1.conv.weight, sd["conv1.conv.weight"])
    assert not any(p.requires_grad for p in model.landmark_net.parameters())


