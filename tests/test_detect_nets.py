"""RetinaFace and MTCNN internals against hand-computed values and independent reference implementations."""

import itertools
import math

import numpy as np
import pytest
import torch

from ferkit.detect import mtcnn as M
from ferkit.detect import retinaface as R
from ferkit.errors import CheckpointError

# ---------------------------------------------------------------- RetinaFace


def _priors_by_loops(h, w, cfg):
    """Prior boxes the way the reference PriorBox loops over them (level, row, column, size), in pixels."""
    out = []
    for step, sizes in zip(cfg.steps, cfg.min_sizes):
        for i, j in itertools.product(range(math.ceil(h / step)), range(math.ceil(w / step))):
            for s in sizes:
                out.append([(j + 0.5) * step, (i + 0.5) * step, s, s])
    return torch.tensor(out, dtype=torch.float32)


@pytest.mark.parametrize("h, w, expected", [(640, 640, 16800), (100, 150, 674)])
def test_prior_count_and_order_match_the_reference_loop(h, w, expected):
    cfg = R.CONFIGS["1mb"]
    priors = R.prior_boxes(h, w, cfg)
    assert priors.shape == (expected, 4)
    torch.testing.assert_close(priors, _priors_by_loops(h, w, cfg))


def test_network_outputs_one_prediction_per_prior_for_odd_sizes():
    net = R.RetinaFace("1mb").eval()
    with torch.no_grad():
        boxes, logits, lms = net(torch.randn(1, 3, 100, 150))
    n = R.prior_boxes(100, 150, R.CONFIGS["1mb"]).shape[0]
    assert boxes.shape == (1, n, 4) and logits.shape == (1, n, 2) and lms.shape == (1, n, 10)


def test_decoding_by_hand():
    prior = torch.tensor([[100.0, 50.0, 20.0, 40.0]])
    deltas = torch.tensor([[1.0, -2.0, math.log(2) / 0.2, 0.0]])
    box = R.decode_boxes(deltas, prior, (0.1, 0.2))
    # centre (100 + 1*0.1*20, 50 - 2*0.1*40) = (102, 42); size (20*2, 40) -> corners +-20
    torch.testing.assert_close(box, torch.tensor([[82.0, 22.0, 122.0, 62.0]]))
    lm = R.decode_landmarks(torch.tensor([[3.0, -1.0] * 5]), prior, (0.1, 0.2))
    torch.testing.assert_close(lm, torch.tensor([[[106.0, 46.0]] * 5]))


def _greedy_nms_reference(boxes, scores, thr, criterion="iou"):
    """Plain-Python float64 greedy NMS (sorted by score)."""
    b = boxes.astype(np.float64)
    order = sorted(range(len(b)), key=lambda i: -scores[i])
    keep = []
    for i in order:
        ok = True
        for k in keep:
            x1, y1 = max(b[i, 0], b[k, 0]), max(b[i, 1], b[k, 1])
            x2, y2 = min(b[i, 2], b[k, 2]), min(b[i, 3], b[k, 3])
            if criterion == "iou":
                inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
                ai = (b[i, 2] - b[i, 0]) * (b[i, 3] - b[i, 1])
                ak = (b[k, 2] - b[k, 0]) * (b[k, 3] - b[k, 1])
                overlap = inter / (ai + ak - inter)
            else:  # MTCNN "Min" with +1 pixel convention
                inter = max(0.0, x2 - x1 + 1) * max(0.0, y2 - y1 + 1)
                ai = (b[i, 2] - b[i, 0] + 1) * (b[i, 3] - b[i, 1] + 1)
                ak = (b[k, 2] - b[k, 0] + 1) * (b[k, 3] - b[k, 1] + 1)
                overlap = inter / min(ai, ak)
            if overlap > thr:
                ok = False
                break
        if ok:
            keep.append(i)
    return keep


def _random_boxes(n, seed):
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 80, (n, 2))
    wh = rng.uniform(5, 40, (n, 2))
    return np.hstack([xy, xy + wh]), rng.permutation(n).astype(np.float64) / n  # distinct scores


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_iou_nms_matches_reference(seed):
    boxes, scores = _random_boxes(60, seed)
    got = R.nms(torch.tensor(boxes), torch.tensor(scores), 0.4).tolist()
    assert got == _greedy_nms_reference(boxes, scores, 0.4)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_min_nms_matches_reference(seed):
    boxes, scores = _random_boxes(60, seed)
    got = M.nms_min(torch.tensor(boxes), torch.tensor(scores), 0.7).tolist()
    assert got == _greedy_nms_reference(boxes, scores, 0.7, "min")


def test_real_retinaface_weights_load_strictly_with_and_without_module_prefix(shared_weights):
    from ferkit.detect import create_detector

    sd = torch.load(shared_weights / "retinaface_mobilenet0.25_Final.pth", map_location="cpu", weights_only=True)
    assert len(sd) == len(R.RetinaFace().state_dict()) == 300
    create_detector("retinaface", weights={f"module.{k}": v for k, v in sd.items()})
    # the optimised (BatchNorm-folded, channels-last) network gives the same raw outputs as the plain one
    plain = create_detector("retinaface", weights=sd, optimize=False).net
    fast = create_detector("retinaface", weights=sd).net
    x = torch.randn(1, 3, 96, 160) * 60
    with torch.no_grad():
        for a, b in zip(plain(x), fast(x.contiguous(memory_format=torch.channels_last))):
            torch.testing.assert_close(a, b, atol=1e-3, rtol=1e-4)
    broken = dict(sd)
    broken.pop("ClassHead.0.conv1x1.bias")
    with pytest.raises(CheckpointError, match=r"RetinaFace weights does not fit the model: 1 missing key\(s\): "
                                              r"ClassHead.0.conv1x1.bias"):
        create_detector("retinaface", weights=broken)


# ---------------------------------------------------------------- MTCNN


def test_pyramid_scales_by_hand():
    scales = M.pyramid_scales(100, 200, 20, 0.709)
    # first scale 12/20 = 0.6 maps the shorter side 100 to 60 px; stop once it is below 12 px
    n = math.floor(math.log(12 / 60) / math.log(0.709)) + 1
    assert len(scales) == n == 5
    np.testing.assert_allclose(scales, [0.6 * 0.709 ** k for k in range(n)])


def test_pnet_candidates_by_hand():
    prob = torch.zeros(3, 4)
    prob[1, 2] = 0.9
    reg = torch.arange(4 * 3 * 4, dtype=torch.float32).reshape(4, 3, 4)
    cand = M.pnet_candidates(reg, prob, scale=0.5, threshold=0.6)
    # cell (row 1, col 2), stride 2, 12x12 window: x1 = floor((2*2+1)/0.5) = 10, y1 = floor(3/0.5) = 6,
    # x2 = floor((4+12)/0.5) = 32, y2 = floor((2+12)/0.5) = 28
    torch.testing.assert_close(cand[0, :5], torch.tensor([10.0, 6.0, 32.0, 28.0, 0.9]))
    torch.testing.assert_close(cand[0, 5:], reg[:, 1, 2])


def test_square_and_regression_by_hand():
    sq = M.square_boxes(torch.tensor([[0.0, 0.0, 10.0, 4.0, 0.5]]))
    torch.testing.assert_close(sq, torch.tensor([[0.0, -3.0, 10.0, 7.0, 0.5]]))
    out = M.apply_regression(torch.tensor([[10.0, 10.0, 19.0, 29.0, 0.8]]), torch.tensor([[0.1, 0.1, -0.1, 0.0]]))
    # width 19-10+1 = 10, height 20 (the "+1" convention)
    torch.testing.assert_close(out, torch.tensor([[11.0, 12.0, 18.0, 29.0, 0.8]]))


def test_dense_flatten_order_is_w_h_c():
    x = torch.arange(2 * 3 * 4, dtype=torch.float32).reshape(1, 2, 3, 4)  # (B, C, H, W)
    manual = [x[0, c, h, w].item() for w in range(4) for h in range(3) for c in range(2)]
    assert M._flatten_whc(x)[0].tolist() == manual


def test_stage_shapes():
    pnet, rnet, onet = M.PNet().eval(), M.RNet().eval(), M.ONet().eval()
    with torch.no_grad():
        reg, prob = pnet(torch.randn(1, 3, 100, 60))
        assert reg.shape == (1, 4, 45, 25) and prob.shape == (1, 2, 45, 25)
        reg, prob = rnet(torch.randn(5, 3, 24, 24))
        assert reg.shape == (5, 4) and prob.shape == (5, 2)
        reg, pts, prob = onet(torch.randn(5, 3, 48, 48))
        assert reg.shape == (5, 4) and pts.shape == (5, 10) and prob.shape == (5, 2)
        torch.testing.assert_close(prob.sum(1), torch.ones(5))


def test_real_mtcnn_weights_load_strictly(shared_weights):
    for key, net in (("pnet", M.PNet()), ("rnet", M.RNet()), ("onet", M.ONet())):
        sd = torch.load(shared_weights / f"mtcnn_{key}.pt", map_location="cpu", weights_only=True)
        assert net.load_state_dict(sd, strict=True) is not None


def test_mtcnn_crops_skip_boxes_outside_the_image():
    img = torch.zeros(3, 50, 40)
    boxes = torch.tensor([[5.0, 5.0, 20.0, 20.0, 0.9], [100.0, 100.0, 120.0, 120.0, 0.9],
                          [-10.0, -5.0, 10.0, 15.0, 0.9]])
    crops, valid = M.crop_resize(img, boxes, 24)
    assert crops.shape == (2, 3, 24, 24) and valid.tolist() == [0, 2]

