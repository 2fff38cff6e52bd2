"""Paper Table 7: the token fuser initialised from a timm ViT checkpoint (``vit_init=PATH``), tested on small ViTs
made by timm itself, so the key layout is timm's real one."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from timm.models.vision_transformer import VisionTransformer

import ferkit
from ferkit.errors import CheckpointError
from ferkit.models.poster_v2 import PosterV2

WIDTH, HEADS = 64, 4


def timm_vit(depth: int = 3, seed: int = 0, **kw) -> VisionTransformer:
    """A small timm ViT (width 64, 4 heads) with non-trivial norms and biases."""
    torch.manual_seed(seed)
    vit = VisionTransformer(img_size=32, patch_size=16, embed_dim=WIDTH, depth=depth, num_heads=HEADS, num_classes=5,
                            **kw).eval()
    with torch.no_grad():
        for p in vit.parameters():
            if p.ndim == 1:
                p.add_(0.1 * torch.randn_like(p))
    return vit


@pytest.fixture(scope="module")
def vit_file(tmp_path_factory) -> tuple[Path, VisionTransformer]:
    vit = timm_vit()
    path = tmp_path_factory.mktemp("vit") / "vit_small.pth"
    torch.save(vit.state_dict(), path)
    return path, vit


def _poster(vit_init, **kw) -> PosterV2:
    return ferkit.create_model("poster_v2", embed_dim=WIDTH, vit_heads=HEADS, vit_init=vit_init, **kw).eval()


def test_fuser_blocks_compute_what_the_vit_blocks_compute(vit_file):
    """After vit_init, each fuser block equals the ViT's block on the same tokens; cls token and final norm too."""
    path, vit = vit_file
    model = _poster(path)
    x = torch.randn(2, 148, WIDTH)
    with torch.no_grad():
        for ours, theirs in zip(model.fuser.blocks, vit.blocks[:2]):
            torch.testing.assert_close(ours(x), theirs(x), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(model.fuser.norm(x), vit.norm(x))
    assert torch.equal(model.fuser.cls_token, vit.cls_token)
    assert model.fuser.pos_embed.shape == (1, 148, WIDTH)  # its own positions: 147 multi-scale tokens + cls


def test_only_the_fuser_changes(vit_file):
    path, _ = vit_file
    torch.manual_seed(3)
    plain = _poster(None)
    torch.manual_seed(3)
    init = _poster(path)
    a, b = plain.state_dict(), init.state_dict()
    changed = {k for k in a if not torch.equal(a[k], b[k])}
    assert changed and all(k.startswith("fuser.") and k != "fuser.pos_embed" for k in changed)
    assert {f"fuser.blocks.{i}.attn.qkv.weight" for i in range(2)} | {"fuser.cls_token", "fuser.norm.weight"} <= changed


def test_safetensors_and_deeper_fuser(tmp_path):
    vit = timm_vit(depth=4)
    path = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in vit.state_dict().items()}, str(path))
    model = _poster(path, vit_depth=4)
    torch.testing.assert_close(model.fuser.blocks[3].mlp.fc2.weight, vit.blocks[3].mlp.fc2.weight)


def test_mismatches_are_errors(vit_file, tmp_path):
    path, _ = vit_file
    with pytest.raises(CheckpointError, match="shape mismatch"):
        ferkit.create_model("poster_v2", embed_dim=128, vit_heads=4, vit_init=path)  # width 64 vs 128
    with pytest.raises(CheckpointError, match="3 blocks found"):
        _poster(path, vit_depth=4)
    with pytest.raises(CheckpointError, match="use_vit=False"):
        _poster(path, use_vit=False)
    layer_scale = tmp_path / "deit3.pth"
    torch.save(timm_vit(init_values=0.1).state_dict(), layer_scale)
    with pytest.raises(CheckpointError, match="ls1.gamma"):
        _poster(layer_scale)
