"""Class-balanced sampler: weights, balance, determinism across resumes, DDP split."""

import math
from collections import Counter

import pytest
import torch

from ferkit.data.samplers import ClassBalancedSampler
from ferkit.errors import DatasetError

TARGETS = [0] * 1000 + [1] * 100 + [2] * 10 + [4] * 2  # class 3 absent


def test_weights_are_inverse_class_counts():
    s = ClassBalancedSampler(TARGETS)
    expected = [1 / 1000] * 1000 + [1 / 100] * 100 + [1 / 10] * 10 + [1 / 2] * 2
    torch.testing.assert_close(s.weights, torch.tensor(expected, dtype=torch.float64))
    assert len(s) == len(TARGETS) and s.class_counts == [1000, 100, 10, 0, 2]


def test_draws_are_balanced():
    s = ClassBalancedSampler(TARGETS, num_samples=40000, seed=3)
    freq = Counter(TARGETS[i] for i in s)
    for c in (0, 1, 2, 4):  # binomial(40000, 1/4): sd = 87; allow 5 sd
        assert abs(freq[c] - 10000) < 5 * math.sqrt(40000 * 0.25 * 0.75)
    assert 3 not in freq


def test_deterministic_per_seed_and_epoch():
    a, b = ClassBalancedSampler(TARGETS, seed=7), ClassBalancedSampler(TARGETS, seed=7)
    assert list(a) == list(b)
    a.set_epoch(1)
    first = list(a)
    assert first != list(b)
    resumed = ClassBalancedSampler(TARGETS, seed=7)
    resumed.set_epoch(1)
    assert list(resumed) == first  # a resumed run draws the same indices
    assert list(ClassBalancedSampler(TARGETS, seed=8)) != list(b)


def test_replicas_split_one_shared_draw():
    n = 1001
    whole = ClassBalancedSampler(TARGETS, num_samples=n, seed=1, num_replicas=1)
    parts = [ClassBalancedSampler(TARGETS, num_samples=n, seed=1, num_replicas=3, rank=r) for r in range(3)]
    assert [len(p) for p in parts] == [334] * 3  # ceil(1001 / 3)
    draw = parts[0].indices().tolist()
    assert len(draw) == 1002
    for r, p in enumerate(parts):
        assert list(p) == draw[r::3]
    assert len(list(whole)) == n


def test_bad_arguments():
    with pytest.raises(DatasetError, match="at least one"):
        ClassBalancedSampler([])
    with pytest.raises(DatasetError, match=">= 0"):
        ClassBalancedSampler([0, -1])
    with pytest.raises(DatasetError, match="rank"):
        ClassBalancedSampler([0, 1], num_replicas=2, rank=2)


def test_with_dataloader():
    data = torch.utils.data.TensorDataset(torch.tensor(TARGETS))
    loader = torch.utils.data.DataLoader(data, batch_size=64, sampler=ClassBalancedSampler(TARGETS, seed=0))
    seen = torch.cat([b[0] for b in loader])
    assert len(seen) == len(TARGETS) and (seen == 0).float().mean() < 0.5
