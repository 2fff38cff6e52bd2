"""Engine building blocks against independent references: sklearn metrics, torch schedulers, hand-computed SAM."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import balanced_accuracy_score, f1_score
from sklearn.metrics import confusion_matrix as sk_confusion

from ferkit.data.subsets import stratified_indices
from ferkit.evaluation.metrics import confusion_matrix, summarize
from ferkit.evaluation.runner import Predictions, label_map, score
from ferkit.train.config import OptimSection, ScheduleSection
from ferkit.train.optim import SAM, build_optimizer
from ferkit.train.schedule import LRSchedule
from ferkit.train.step import StepRunner, TrainForward

NAMES = ("neutral", "happiness", "sadness", "surprise", "fear")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metrics_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    k = len(NAMES)
    y = rng.integers(0, k - 1, 300)  # class k-1 ("fear") never occurs in the targets ...
    p = np.where(rng.random(300) < 0.6, y, rng.integers(0, k, 300))  # ... but is sometimes predicted
    cm = confusion_matrix(torch.tensor(y), torch.tensor(p), k)
    assert cm.tolist() == sk_confusion(y, p, labels=list(range(k))).tolist()
    s = summarize(cm, NAMES)
    assert s["accuracy"] == pytest.approx(float((y == p).mean()), abs=1e-12)
    with pytest.warns(UserWarning):  # sklearn warns about the predicted-only class and drops it, as we do
        ref_mca = balanced_accuracy_score(y, p)
    assert s["mean_class_accuracy"] == pytest.approx(ref_mca, abs=1e-12)
    present = sorted(set(y.tolist()))
    assert s["macro_f1"] == pytest.approx(f1_score(y, p, labels=present, average="macro", zero_division=0), abs=1e-12)
    per = {r["class"]: r for r in s["per_class"]}
    ref_f1 = f1_score(y, p, labels=present, average=None, zero_division=0)
    for c, f in zip(present, ref_f1):
        assert per[NAMES[c]]["f1"] == pytest.approx(f, abs=1e-12)
    assert s["absent_classes"] == ["fear"] and per["fear"]["accuracy"] is None and per["fear"]["predicted"] > 0


def test_label_mapping_by_name_excludes_and_reports():
    model_names = ("surprise", "fear", "disgust", "happiness", "sadness", "anger", "neutral")  # RAF-DB order
    data_names = ("anger", "contempt", "happiness", "neutral")  # another order, with a class the model lacks
    lmap = label_map(model_names, data_names)
    assert lmap.index == [5, None, 3, 6]
    data_targets = torch.tensor([0, 1, 2, 3, 3, 1])
    preds = torch.tensor([5, 3, 3, 0, 6, 6])  # model-space predictions
    s = score(Predictions(targets=lmap.lookup()[data_targets], preds=preds), lmap)
    assert s["num_samples"] == 4 and s["excluded"]["samples"] == 2 and s["excluded"]["classes"] == ["contempt"]
    assert s["accuracy"] == pytest.approx(3 / 4)
    assert set(s["absent_classes"]) == {"surprise", "fear", "disgust", "sadness"}
    assert s["mean_class_accuracy"] == pytest.approx((1 + 1 + 0.5) / 3)


def _torch_lrs(make, epochs, lr=0.1):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=lr)
    sched = make(opt)
    out = []
    for _ in range(epochs):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_exponential_schedule_matches_torch():
    ours = LRSchedule(ScheduleSection(name="exponential", gamma=0.98), 3.5e-5, 200)
    ref = _torch_lrs(lambda o: torch.optim.lr_scheduler.ExponentialLR(o, 0.98), 200, lr=3.5e-5)
    assert [ours.lr_at(e) for e in range(200)] == pytest.approx(ref, rel=1e-9)


def test_cosine_with_constant_warmup_matches_dassl_order():
    """Dassl's ConstantWarmupScheduler: epoch 0 at warmup_lr, then CosineAnnealingLR(T_max=max_epoch) from its start."""
    epochs = 20
    ours = LRSchedule(ScheduleSection(name="cosine", warmup_epochs=1, warmup_lr=1e-5), 0.032, epochs)
    cosine = _torch_lrs(lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=epochs), epochs, lr=0.032)
    ref = [1e-5] + cosine[: epochs - 1]
    assert [ours.lr_at(e) for e in range(epochs)] == pytest.approx(ref, rel=1e-9)
    step_sched = LRSchedule(ScheduleSection(name="cosine", interval="step"), 1.0, 10)
    assert step_sched.lr_at(2.5) == pytest.approx((1 + math.cos(math.pi * 0.25)) / 2)


def test_sam_step_equals_hand_computation():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 4).double()
    x, y = torch.randn(6, 3, dtype=torch.float64), torch.randint(0, 4, (6,))
    w0 = [p.detach().clone() for p in model.parameters()]
    rho, lr, eps = 0.05, 1e-2, 1e-8

    def grads(ws):
        ws = [w.clone().requires_grad_(True) for w in ws]
        loss = torch.nn.functional.cross_entropy(torch.nn.functional.linear(x, ws[0], ws[1]), y)
        return torch.autograd.grad(loss, ws)

    g1 = grads(w0)
    norm = torch.sqrt(sum((g ** 2).sum() for g in g1))
    g2 = grads([w + rho * g / (norm + 1e-12) for w, g in zip(w0, g1)])
    expected = [w - lr * g / (g.abs() + eps) for w, g in zip(w0, g2)]  # first Adam step: m/sqrt(v) = g/|g|

    opt = build_optimizer(model.parameters(), OptimSection(name="adam", lr=lr, eps=eps))
    runner = StepRunner(TrainForward(model), opt, device=torch.device("cpu"), sam=SAM(opt, rho))
    stats = runner([(x, y)])
    for p, e in zip(model.parameters(), expected):
        torch.testing.assert_close(p.detach(), e, rtol=0, atol=1e-12)
    first_loss = torch.nn.functional.cross_entropy(torch.nn.functional.linear(x, *w0), y).item()
    assert stats.loss_sum / stats.count == pytest.approx(first_loss, abs=1e-12)  # first pass only


def test_gradient_accumulation_equals_one_big_batch():
    torch.manual_seed(0)
    x, y = torch.randn(8, 5, dtype=torch.float64), torch.randint(0, 3, (8,))
    results = []
    for chunks in (1, 2, 4):
        torch.manual_seed(1)
        model = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.Tanh(), torch.nn.Linear(7, 3)).double()
        opt = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
        runner = StepRunner(TrainForward(model), opt, device=torch.device("cpu"))
        runner(list(zip(x.chunk(chunks), y.chunk(chunks))))
        results.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    torch.testing.assert_close(results[0], results[1], rtol=0, atol=1e-12)
    torch.testing.assert_close(results[0], results[2], rtol=0, atol=1e-12)


def test_fp16_sam_skips_overflowing_step():
    model = torch.nn.Linear(3, 2)
    opt = build_optimizer(model.parameters(), OptimSection(name="adam", lr=0.1))
    runner = StepRunner(TrainForward(model), opt, device=torch.device("cpu"), precision="fp16", sam=SAM(opt, 0.05),
                        allow_cpu_fp16=True)  # loss scaling exercised without a GPU (explicit opt-in)
    before = [p.detach().clone() for p in model.parameters()]
    scale = runner.scaler.get_scale()
    x = torch.full((4, 3), float("inf"))  # an overflow -> non-finite gradients in the first SAM pass
    stats = runner([(x, torch.zeros(4, dtype=torch.long))])
    assert stats.skipped and runner.scaler.get_scale() < scale
    assert all(torch.equal(a, b.detach()) for a, b in zip(before, model.parameters()))
    stats = runner([(torch.randn(4, 3), torch.zeros(4, dtype=torch.long))])
    assert not stats.skipped and not all(torch.equal(a, b.detach()) for a, b in zip(before, model.parameters()))


def test_stratified_subset_keeps_class_shares():
    targets = [0] * 700 + [1] * 200 + [2] * 100
    idx = stratified_indices(targets, 100, seed=3)
    assert len(idx) == 100 and len(set(idx)) == 100
    counts = np.bincount([targets[i] for i in idx])
    assert counts.tolist() == [70, 20, 10]
    assert stratified_indices(targets, 100, seed=3) == idx != stratified_indices(targets, 100, seed=4)
    assert np.bincount([targets[i] for i in stratified_indices(targets, 5, 0)]).min() >= 1  # every class kept


def test_balanced_subset_equal_per_class_where_possible():
    from ferkit.train.data import balanced_indices

    targets = [0] * 700 + [1] * 200 + [2] * 10
    idx = balanced_indices(targets, 90, seed=0)
    assert np.bincount([targets[i] for i in idx]).tolist() == [40, 40, 10]  # class 2 has only 10
    idx = balanced_indices(targets, 60, seed=0)
    assert np.bincount([targets[i] for i in idx]).tolist() == [25, 25, 10]  # class 2's shortfall is shared
    assert len(set(idx)) == 60
