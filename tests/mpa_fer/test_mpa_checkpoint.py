"""MPA-FER checkpoints: only the prompts (kilobytes), CLIP identity enforced, training checkpoints keep prototypes."""

from __future__ import annotations

import logging

import pytest
import torch

import ferkit
from ferkit.checkpoint import read_checkpoint, sha256_file
from ferkit.errors import CheckpointError, WeightsError
from ferkit.models.mpa_fer.prompts import builtin_descriptions_path


@pytest.fixture
def other_clip_file(tmp_path):
    from ferkit.clip import build_clip

    path = tmp_path / "other_clip.pt"
    torch.save(build_clip("tiny", seed=9).state_dict(), path)
    return path


def test_checkpoint_holds_only_prompts_and_reloads_exactly(make_model, tiny_clip_file, tmp_path):
    model = make_model(label_names="ferplus").eval()
    with torch.no_grad():
        model.vprompt.normal_()
        model.ctx.normal_()
    path = model.save(tmp_path / "mpa.pt")
    assert path.stat().st_size < 32 * 1024 < tiny_clip_file.stat().st_size
    ck = read_checkpoint(path)
    assert set(ck["state_dict"]) == {"ctx", "vprompt"}
    assert ck["model"] == "mpa_fer_vit_b16" and ck["label_names"] == list(model.label_names)
    assert ck["meta"]["clip"] == {"arch": "tiny", "sha256": sha256_file(tiny_clip_file), "source": "file",
                                  "file": tiny_clip_file.name}
    assert ck["meta"]["descriptions_sha256"] == sha256_file(builtin_descriptions_path())
    assert ck["model_args"]["clip_arch"] == "tiny" and ck["model_args"]["n_proto"] == "all"
    back = ferkit.create_model("mpa_fer_vit_b16", checkpoint=path, clip_weights=str(tiny_clip_file)).eval()
    assert back.label_names == model.label_names
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        assert torch.equal(back(x), model(x))
    assert back.load_report["prototypes"] is False


def test_b16_shaped_checkpoint_is_kilobytes(tmp_path):
    from ferkit.clip import build_clip
    from ferkit.models.mpa_fer import MPAFER, MPAFERConfig

    model = MPAFER(MPAFERConfig(hard_prompt="h2"), build_clip("ViT-B-16", device="meta"), label_names="rafdb")
    model.ctx = torch.nn.Parameter(torch.zeros(model.ctx.shape))  # real tensors of the real shapes
    model.vprompt = torch.nn.Parameter(torch.zeros(model.vprompt.shape))
    model.model_name = "mpa_fer_vit_b16"
    size = model.save(tmp_path / "b16.pt").stat().st_size
    assert 78_848 * 4 < size < 330 * 1024  # ~316 KB; the CLIP it runs on is ~600 MB in fp32


def test_other_clip_is_refused_unless_allowed(make_model, other_clip_file, tmp_path, caplog):
    path = make_model().save(tmp_path / "mpa.pt")
    with pytest.raises(CheckpointError, match="clip_weights=<that file>"):
        ferkit.create_model("mpa_fer_vit_b16", checkpoint=path, clip_weights=str(other_clip_file))
    with caplog.at_level(logging.WARNING):
        model = ferkit.create_model("mpa_fer_vit_b16", checkpoint=path, clip_weights=str(other_clip_file),
                                    allow_clip_mismatch=True)
    assert "allow_clip_mismatch=True" in caplog.text and model.clip_identity["sha256"] == sha256_file(other_clip_file)


def test_training_checkpoint_restores_prototypes(make_model, tiny_clip_file, tmp_path):
    model = make_model()
    protos = torch.nn.functional.normalize(torch.randn(7, 32), dim=-1)
    model.set_prototypes(protos, key="abc")
    path = tmp_path / "train.safetensors"
    ferkit.checkpoint.save_checkpoint(model.checkpoint_dict(include_prototypes=True, epoch=3), path)
    back = ferkit.create_model("mpa_fer_vit_b16", checkpoint=path, clip_weights=str(tiny_clip_file))
    assert torch.equal(back.prototypes, protos) and back.prototype_key == "abc"
    fresh = ferkit.create_model("mpa_fer_vit_b16", checkpoint=path, clip_weights=str(tiny_clip_file),
                                label_names="affectnet8", reset_head=True)
    assert fresh.prototypes is None and fresh.num_classes == 8  # shared ctx + vprompt carry over


def test_mismatched_options_and_foreign_files_are_refused(make_model, tiny_clip_file, tmp_path):
    path = make_model().save(tmp_path / "mpa.pt")
    with pytest.raises(CheckpointError, match="vprompt"):
        ferkit.create_model("mpa_fer_vit_b16", checkpoint=path, clip_weights=str(tiny_clip_file), n_vprompt=4)
    torch.save({"head.weight": torch.zeros(7, 3)}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not an MPA-FER checkpoint"):
        ferkit.create_model("mpa_fer_vit_b16", checkpoint=tmp_path / "foreign.pt", clip_weights=str(tiny_clip_file))


def test_missing_clip_weights_name_the_download_command():
    with pytest.raises(WeightsError, match="ferkit weights download clip_vit_b16"):
        ferkit.create_model("mpa_fer_vit_b16")
    with pytest.raises(WeightsError, match="ferkit weights download clip_vit_l14"):
        ferkit.create_model("mpa_fer_vit_l14")
    with pytest.raises(WeightsError, match="clip_weights='random'"):
        ferkit.create_model("mpa_fer_vit_b16", clip_arch="tiny")
