"""Inverse-frequency class-balanced sampling (POSTER++ and MPA-FER on AffectNet).

Like ``torchsampler.ImbalancedDatasetSampler`` in the official POSTER V2 code: each sample is drawn with weight
``1 / count(its class)``, with replacement, ``len(dataset)`` draws per epoch, so every class is drawn about equally
often. Unlike it, the draw is seeded by ``(seed, epoch)`` (a resumed run draws the same indices) and split across
DDP replicas.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Sampler

from ferkit.errors import DatasetError


class ClassBalancedSampler(Sampler[int]):
    """Draw indices with probability proportional to ``1 / count(class)``, with replacement.

    Args:
        targets: class index of every sample (e.g. ``dataset.targets``).
        num_samples: draws per epoch over all replicas (default ``len(targets)``), rounded up to a multiple of
            ``num_replicas``.
        seed: base seed; epoch ``e`` uses a generator seeded with ``seed + e``.
        num_replicas, rank: for DDP, replica ``rank`` gets every ``num_replicas``-th index of one shared draw.
    """

    def __init__(self, targets: Sequence[int], *, num_samples: int | None = None, seed: int = 0,
                 num_replicas: int = 1, rank: int = 0):
        t = torch.as_tensor(list(targets), dtype=torch.long)
        if t.numel() == 0:
            raise DatasetError("ClassBalancedSampler needs at least one target")
        if int(t.min()) < 0:
            raise DatasetError(f"ClassBalancedSampler: targets must be >= 0, found {int(t.min())}")
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise DatasetError(f"ClassBalancedSampler: need 0 <= rank < num_replicas, got {rank}, {num_replicas}")
        counts = torch.bincount(t)
        self.class_counts = counts.tolist()
        self.weights = 1.0 / counts[t].double()
        total = int(num_samples if num_samples is not None else t.numel())
        if total < 1:
            raise DatasetError(f"ClassBalancedSampler: num_samples must be positive, got {total}")
        self.total_size = -(-total // num_replicas) * num_replicas
        self.num_samples = self.total_size // num_replicas
        self.seed, self.epoch, self.num_replicas, self.rank = int(seed), 0, num_replicas, rank

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose draw ``__iter__`` returns (call before each epoch, as with DistributedSampler)."""
        self.epoch = int(epoch)

    def indices(self) -> torch.Tensor:
        """The full draw of this epoch over all replicas, shape ``(total_size,)``."""
        g = torch.Generator()
        g.manual_seed(self.seed + self.epoch)
        return torch.multinomial(self.weights, self.total_size, replacement=True, generator=g)

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices()[self.rank::self.num_replicas].tolist())

    def __len__(self) -> int:
        return self.num_samples
