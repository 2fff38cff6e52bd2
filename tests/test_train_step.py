"""``ferkit.train.step`` piece by piece against hand computations: the loss TrainForward picks (hook or
cross-entropy, label smoothing, soft targets), StepStats' sums over micro-batches, and StepRunner's device/layout
handling, gradient clipping and the first-pass-only statistics. (SAM, accumulation and fp16 skips:
``test_engine_units.py``.)"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ferkit.train.step import StepRunner, StepStats, TrainForward

CPU = torch.device("cpu")


def _ce64(logits: torch.Tensor, targets: torch.Tensor, smoothing: float = 0.0) -> float:
    """Cross-entropy with label smoothing written out in float64; targets are indices (B,) or probabilities (B, K)."""
    logp = logits.double().log_softmax(1)
    k = logits.shape[1]
    q = targets.double() if targets.ndim == 2 else torch.eye(k, dtype=torch.float64)[targets]
    q = (1 - smoothing) * q + smoothing / k
    return float(-(q * logp.detach()).sum(1).mean())


class WithHook(nn.Module):
    """A model with a ``training_loss`` hook that records what it was given."""

    def __init__(self, smooths: bool):
        super().__init__()
        self.lin = nn.Linear(3, 4)
        self.calls: list[dict] = []
        if smooths:
            self.training_loss = self._loss_smoothing
        else:
            self.training_loss = self._loss_plain

    def _loss_smoothing(self, images, targets, label_smoothing=0.0):
        self.calls.append({"images": images, "targets": targets, "label_smoothing": label_smoothing})
        logits = self.lin(images)
        return logits.sum() * 0 + 7.0, logits, {"ce": torch.tensor(1.5), "extra": 0.25}

    def _loss_plain(self, images, targets):
        self.calls.append({"images": images, "targets": targets})
        logits = self.lin(images)
        return logits.sum() * 0 + 3.0, logits, None


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_plain_model_gets_cross_entropy_with_smoothing(smoothing):
    torch.manual_seed(0)
    model = nn.Linear(3, 4)
    x, y = torch.randn(5, 3), torch.tensor([0, 3, 1, 1, 2])
    loss, logits, parts = TrainForward(model, label_smoothing=smoothing)(x, y)
    assert parts == {} and torch.equal(logits, model(x))
    assert float(loss.detach()) == pytest.approx(_ce64(model(x), y, smoothing), abs=1e-6)
    soft = torch.softmax(torch.randn(5, 4), 1)  # soft targets (FER+ votes): the same formula with q = votes
    loss, _, _ = TrainForward(model, label_smoothing=smoothing)(x, soft)
    assert float(loss.detach()) == pytest.approx(_ce64(model(x), soft, smoothing), abs=1e-6)


def test_hook_is_used_and_gets_label_smoothing_only_when_it_takes_it():
    x, y = torch.randn(2, 3), torch.tensor([1, 2])
    smooth = WithHook(smooths=True)
    loss, logits, parts = TrainForward(smooth, label_smoothing=0.3)(x, y)
    assert float(loss.detach()) == 7.0 and logits.shape == (2, 4) and parts == {"ce": torch.tensor(1.5), "extra": 0.25}
    (call,) = smooth.calls
    assert call["images"] is x and call["targets"] is y and call["label_smoothing"] == 0.3
    plain = WithHook(smooths=False)
    loss, _, parts = TrainForward(plain, label_smoothing=0.3)(x, y)  # would raise if label_smoothing were passed
    assert float(loss.detach()) == 3.0 and parts == {} and plain.calls[0]["targets"] is y


def test_step_stats_sum_over_micro_batches_by_hand():
    stats = StepStats()
    logits1 = torch.tensor([[2.0, 0.0, 1.0], [0.0, 3.0, 1.0]])  # predicts 0, 1
    stats.add(torch.tensor(0.5), logits1, torch.tensor([0, 2]), {"ce": torch.tensor(0.4), "v": 1.0})
    logits2 = torch.tensor([[0.0, 0.0, 5.0], [1.0, 0.0, 0.0], [0.0, 2.0, 0.0]])  # predicts 2, 0, 1
    soft = torch.tensor([[0.1, 0.1, 0.8, 0.0, 0.0], [0.2, 0.7, 0.1, 0.9, 0.1], [0.0, 0.6, 0.4, 0.0, 0.0]])
    stats.add(torch.tensor(1.5), logits2, soft, {"ce": 0.2})  # soft targets + 2 auxiliary columns: argmax of 3
    assert stats.count == 5 and stats.correct == 1 + 2  # batch 1: 0 right, 1 wrong; batch 2: 2 right, 0 wrong
    assert stats.loss_sum == pytest.approx(0.5 * 2 + 1.5 * 3)
    assert stats.parts == pytest.approx({"ce": 0.4 * 2 + 0.2 * 3, "v": 1.0 * 2}) and not stats.skipped


def test_runner_moves_inputs_casts_targets_and_uses_channels_last():
    seen = []

    class Probe(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 2, 1)

        def forward(self, x):
            seen.append(x)
            return self.conv(x).mean((2, 3))

    model = Probe()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x = torch.randn(2, 3, 4, 4)
    runner = StepRunner(TrainForward(model), opt, device=CPU, channels_last=True)
    stats = runner([(x, torch.tensor([1, 0], dtype=torch.int32))])
    assert seen[-1].is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous(
        memory_format=torch.channels_last)
    assert stats.count == 2
    runner.channels_last = False
    runner([(x, torch.tensor([[0.3, 0.7], [1.0, 0.0]], dtype=torch.float64))])  # soft targets stay float
    assert seen[-1].is_contiguous()
    xd, yd = runner._to_device(x, torch.tensor([1, 0], dtype=torch.int32))
    assert yd.dtype == torch.long and torch.equal(xd, x)
    assert runner._to_device(x, torch.tensor([[0.5, 0.5]], dtype=torch.float64))[1].dtype == torch.float32


def test_gradient_clipping_equals_hand_computation():
    torch.manual_seed(0)
    model = nn.Linear(4, 3).double()
    x, y = torch.randn(6, 4, dtype=torch.float64), torch.tensor([0, 1, 2, 0, 1, 2])
    w0 = [p.detach().clone() for p in model.parameters()]
    loss = nn.functional.cross_entropy(nn.functional.linear(x, *[w.requires_grad_(True) for w in w0]), y)
    grads = torch.autograd.grad(loss, w0)
    norm = torch.sqrt(sum((g ** 2).sum() for g in grads))
    clip, lr = 0.05, 0.5
    assert norm > 4 * clip  # the clip really bites
    expected = [w.detach() - lr * g * (clip / (norm + 1e-6)) for w, g in zip(w0, grads)]
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    StepRunner(TrainForward(model), opt, device=CPU, grad_clip=clip)([(x, y)])
    for p, e in zip(model.parameters(), expected):
        torch.testing.assert_close(p.detach(), e, rtol=0, atol=1e-12)
    assert all(p.grad is None for p in model.parameters())  # gradients cleared after the step


def test_micro_batch_stats_are_weighted_by_their_images():
    torch.manual_seed(0)
    model = nn.Linear(3, 4).double()
    x, y = torch.randn(7, 3, dtype=torch.float64), torch.randint(0, 4, (7,))
    expected = _ce64(model(x).detach(), y)
    correct = int((model(x).argmax(1) == y).sum())
    stats = StepRunner(TrainForward(model), torch.optim.SGD(model.parameters(), lr=0.0), device=CPU)(
        [(x[:2], y[:2]), (x[2:], y[2:])])
    assert stats.count == 7 and stats.correct == correct
    assert stats.loss_sum / stats.count == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("precision,dtype", [("fp32", torch.float32), ("bf16", torch.bfloat16)])
def test_forward_runs_under_the_requested_autocast(precision, dtype):
    seen = []

    class Probe(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(3, 2)

        def forward(self, x):
            out = self.lin(x)
            seen.append(out.dtype)
            return out

    model = Probe()
    stats = StepRunner(TrainForward(model), torch.optim.SGD(model.parameters(), lr=0.1), device=CPU,
                       precision=precision)([(torch.randn(4, 3), torch.tensor([0, 1, 1, 0]))])
    assert seen == [dtype] and stats.count == 4 and model.lin.weight.dtype == torch.float32
