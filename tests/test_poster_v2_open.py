"""POSTER++ with pluggable streams (poster_v2_open): wiring of the open streams, input conversion, losses, heads."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import ferkit
from ferkit.constants import DLIB_NORM
from ferkit.errors import CheckpointError, ConfigError
from ferkit.labels import DATASET_ORDERS
from ferkit.models._factory import promote_aux_head
from ferkit.models.poster_v2 import PosterV2, PosterV2Config
from ferkit.nn.dlib_resnet import DlibResNet
from ferkit.nn.facemesh import FaceMesh
from tests._shared import SHARED_WEIGHTS


@pytest.fixture(scope="module")
def open_model() -> PosterV2:
    torch.manual_seed(0)
    return ferkit.create_model("poster_v2_open", label_names="ferplus", aux_head="fer2013").eval()


def test_official_configuration_is_unchanged() -> None:
    m = PosterV2()
    assert m.maps == (28, 14, 7) and m.token_counts == [49, 49, 49]
    assert m.data_config["input_size"] == 224 and m.landmark_input is None
    assert not any(k.startswith(("aux_head", "landmark_net.net", "image_net.net")) for k in m.state_dict())
    assert "landmark_proj.weight" in m.state_dict() and m.state_dict()["landmark_proj.weight"].shape == (256, 512, 3, 3)


@pytest.mark.parametrize("size", [112, 128, 160])
def test_open_maps_match_the_streams(size: int) -> None:
    m = ferkit.create_model("poster_v2_open", input_size=size, embed_dim=64, vit_heads=4).eval()
    x = torch.randn(1, 3, size, size)
    with torch.no_grad():
        img, lm = m.streams(x)
        out = m(x)
    assert [t.shape[-1] for t in img] == list(m.maps) == [t.shape[-1] for t in lm]
    assert [t.shape[1] for t in img] == [64, 128, 256] == [t.shape[1] for t in lm]
    assert m.tokens(x).shape[1] == sum(m.token_counts) and out.shape == (1, m.num_classes)


def test_open_streams_see_their_own_normalisation(open_model: PosterV2) -> None:
    """The dlib stream gets the model input as is (dlib's own normalisation); FaceMesh gets [0, 1] RGB."""
    m = open_model
    assert tuple(m.data_config["mean"]) == DLIB_NORM[0] and tuple(m.data_config["std"]) == DLIB_NORM[1]
    rgb01 = torch.rand(2, 3, 112, 112)
    x = (rgb01 - torch.tensor(DLIB_NORM[0]).view(1, 3, 1, 1)) / torch.tensor(DLIB_NORM[1]).view(1, 3, 1, 1)
    dlib, mesh = DlibResNet(num_levels=4, embedding=False), FaceMesh()
    dlib.load_state_dict(m.image_net.net.state_dict())
    mesh.load_state_dict(m.landmark_net.net.state_dict())
    with torch.no_grad():
        img, lm = m.streams(x)
        ref_img = dlib.eval().features(((rgb01 * 255) - torch.tensor([122.782, 117.001, 104.298]).view(1, 3, 1, 1))
                                       / 256.0)[1:]
        ref_lm = list(mesh.eval().features(rgb01))
        ref_lm = [F.adaptive_avg_pool2d(t, side) for t, side in zip(ref_lm, m.maps)]
        ref_lm[2] = m.landmark_proj(ref_lm[2])
    for a, b in zip(img, ref_img):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
    for a, b in zip(lm, ref_lm):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_mobilefacenet_beside_dlib_gets_unit_rgb() -> None:
    m = ferkit.create_model("poster_v2_open", landmark_stream="mobilefacenet", embed_dim=64, vit_heads=4).eval()
    x = torch.randn(1, 3, 112, 112)
    seen = {}
    m.landmark_net.register_forward_pre_hook(lambda mod, args: seen.setdefault("x", args[0]))
    with torch.no_grad():
        m(x)
    rgb01 = x * torch.tensor(DLIB_NORM[1]).view(1, 3, 1, 1) + torch.tensor(DLIB_NORM[0]).view(1, 3, 1, 1)
    torch.testing.assert_close(seen["x"], rgb01)
    official = PosterV2()  # IR-50 + MobileFaceNet: the landmark net gets the ImageNet-normalised image, as officially
    official.landmark_net.register_forward_pre_hook(lambda mod, args: seen.__setitem__("y", args[0]))
    y = torch.randn(1, 3, 112, 112)
    with torch.no_grad():
        official.eval().streams(y)
    assert torch.equal(seen["y"], y)


def test_image_stream_only() -> None:
    m = ferkit.create_model("poster_v2_open", landmark_stream="none", cross_fusion=False, embed_dim=64, vit_heads=4,
                            label_names="ferplus")
    assert m.landmark_net is None and not hasattr(m, "landmark_proj") and m.token_counts == [49, 36, 9]
    assert m(torch.randn(2, 3, 112, 112)).shape == (2, 8)
    with pytest.raises(ConfigError, match="nothing to fuse"):
        PosterV2(PosterV2Config(image_stream="dlib_resnet", landmark_stream="none"))
    with pytest.raises(CheckpointError, match="no landmark stream"):
        from ferkit.models.poster_v2 import load_landmark_stream

        load_landmark_stream(m, {})


def test_training_loss_soft_and_auxiliary_targets(open_model: PosterV2) -> None:
    m = open_model
    x = torch.randn(4, 3, 112, 112)
    soft = torch.tensor([[0.6, 0.4, 0, 0, 0, 0, 0, 0], [0, 0, 1.0, 0, 0, 0, 0, 0],
                         [0.1, 0.1, 0.1, 0.1, 0.2, 0.2, 0.1, 0.1], [0, 0, 0, 0, 0, 0, 0.5, 0.5]])
    aux = torch.zeros(4, 7)
    aux[0, 3] = aux[2, 6] = 1.0  # rows 1 and 3 have no FER2013 label
    with torch.no_grad():
        loss, logits, parts = m.training_loss(x, torch.cat([soft, aux], 1))
        f = m.forward_features(x).double()
        main_logits = F.linear(f, m.head.weight.double(), m.head.bias.double())
        aux_logits = F.linear(f, m.aux_head.weight.double(), m.aux_head.bias.double())
    main = -(soft.double() * main_logits.log_softmax(1)).sum(1).mean()
    aux_ce = -aux_logits.log_softmax(1)[[0, 2], [3, 6]].mean()
    assert loss.item() == pytest.approx((main + m.config.aux_weight * aux_ce).item(), rel=1e-5)
    assert parts["loss_aux"].item() == pytest.approx(aux_ce.item(), rel=1e-5)
    torch.testing.assert_close(logits.double(), main_logits, atol=1e-5, rtol=1e-5)
    hard, _, _ = m.training_loss(x, torch.tensor([0, 2, 4, 7]))
    assert hard.item() == pytest.approx(F.cross_entropy(main_logits, torch.tensor([0, 2, 4, 7])).item(), rel=1e-5)


def test_promoted_aux_head_gives_the_aux_logits(open_model: PosterV2) -> None:
    ckpt = open_model.checkpoint_dict()
    promoted = ferkit.create_model("poster_v2_open", checkpoint=promote_aux_head(ckpt)).eval()
    assert promoted.label_names == DATASET_ORDERS["fer2013"]
    assert promoted.aux_head is None and promoted.num_classes == 7
    x = torch.randn(2, 3, 112, 112)
    with torch.no_grad():
        torch.testing.assert_close(promoted(x), open_model.forward_aux(x))
    with pytest.raises(CheckpointError, match="no auxiliary head"):
        promote_aux_head(promoted.checkpoint_dict())


def test_grayscale_travels_in_the_data_config() -> None:
    m = ferkit.create_model("poster_v2_open", grayscale=True, embed_dim=64, vit_heads=4)
    assert m.data_config["grayscale"] is True
    again = ferkit.create_model("poster_v2_open", checkpoint=m.checkpoint_dict())
    assert again.data_config["grayscale"] is True and again.data_config["input_size"] == 112


def test_real_stream_files_load_by_path_and_refuse_the_wrong_stream() -> None:
    dat = SHARED_WEIGHTS / "dlib_face_recognition_resnet_model_v1.dat"
    tfl = SHARED_WEIGHTS / "mediapipe_face_landmark.tflite"
    if not (dat.is_file() and tfl.is_file()):
        pytest.skip("shared weights not available")
    m = ferkit.create_model("poster_v2_open", embed_dim=64, vit_heads=4, image_weights=str(dat),
                            landmark_weights=str(tfl))
    ref = DlibResNet()
    from ferkit.convert.dlib_dat import convert_dlib_resnet

    ref.load_state_dict(convert_dlib_resnet(dat)[0])
    assert torch.equal(m.image_net.net.conv1.weight, ref.conv1.weight)
    assert not any(p.requires_grad for p in m.landmark_net.parameters())
    with pytest.raises(CheckpointError, match="dlib_resnet weights, but this stream is facemesh"):
        ferkit.create_model("poster_v2_open", embed_dim=64, vit_heads=4, landmark_weights=str(dat))
