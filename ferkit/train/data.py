"""Data for the training loop: data sets from the config, stratified subsets, samplers and loaders.

Every source of randomness is a function of (seed, epoch): the shuffle / class-balanced order, the DataLoader worker
seeds (through a seeded generator), so an epoch replays identically after a resume.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from ferkit.data.subsets import balanced_indices, stratified_indices
from ferkit.errors import ConfigError
from ferkit.train.config import DataSection

log = logging.getLogger(__name__)


class SubsetView(Dataset):
    """A subset of a ferkit data set that keeps ``label_names``, ``targets``, ``samples`` and ``class_counts()``."""

    def __init__(self, base: Any, indices: Sequence[int]):
        self.base, self.indices = base, list(indices)
        self.label_names = base.label_names
        self.targets = [base.targets[i] for i in self.indices]
        self.samples = [base.samples[i] for i in self.indices]
        self.name, self.split = getattr(base, "name", "?"), getattr(base, "split", "?")

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        return self.base[self.indices[i]]

    @property
    def transform(self):
        return self.base.transform

    @transform.setter
    def transform(self, value) -> None:
        self.base.transform = value

    def class_counts(self) -> dict[str, int]:
        counts = [0] * len(self.label_names)
        for t in self.targets:
            counts[t] += 1
        return dict(zip(self.label_names, counts))


def build_split(cfg: DataSection, split: str, limit: int | None) -> Any:
    """``build_dataset(cfg.name, cfg.root, split, **cfg.options)``, restricted to ``cfg.classes`` and optionally cut
    to a stratified (or class-balanced) subset."""
    from ferkit.data import build_dataset

    if not cfg.root:
        raise ConfigError(f"config key 'data.root' is empty; set it to the {cfg.name} folder "
                          f"(--set data.root=PATH; `ferkit data list` shows the expected layouts)")
    options = dict(cfg.options) if split == cfg.train_split else {**cfg.options, **cfg.val_options}
    ds = build_dataset(cfg.name, cfg.root, split, on_error=cfg.on_error, **options)
    if cfg.classes:
        ds = ds.with_label_names(cfg.classes, drop_missing=True)
    if limit is not None and limit < len(ds):
        pick = balanced_indices if cfg.balanced_subset else stratified_indices
        ds = SubsetView(ds, pick(ds.targets, limit, cfg.subset_seed))
        log.info("%s/%s: %s subset of %d samples %s", cfg.name, split,
                 "class-balanced" if cfg.balanced_subset else "stratified", len(ds), ds.class_counts())
    return ds


class ShardSampler(Sampler[int]):
    """Indices ``rank, rank + world, ...`` in order: every sample evaluated exactly once across processes."""

    def __init__(self, n: int, num_replicas: int = 1, rank: int = 0):
        self.n, self.num_replicas, self.rank = n, num_replicas, rank

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.rank, self.n, self.num_replicas))

    def __len__(self) -> int:
        return len(range(self.rank, self.n, self.num_replicas))


def train_sampler(dataset: Any, kind: str, seed: int, num_replicas: int, rank: int) -> Sampler[int]:
    """``shuffle``: a (distributed) random permutation per epoch; ``balanced``: draws with probability
    1 / count(class), with replacement, one epoch = data-set size (``ImbalancedDatasetSampler`` as POSTER++ uses)."""
    if kind == "balanced":
        from ferkit.data.samplers import ClassBalancedSampler

        return ClassBalancedSampler(dataset.targets, seed=seed, num_replicas=num_replicas, rank=rank)
    return DistributedSampler(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed)


def make_loader(dataset: Any, batch_size: int, sampler: Sampler[int], *, num_workers: int, seed: int,
                drop_last: bool = False, pin_memory: bool = False) -> DataLoader:
    """A DataLoader whose worker seeds derive from ``seed`` (set per epoch by the caller)."""
    g = torch.Generator().manual_seed(seed)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers, drop_last=drop_last,
                      pin_memory=pin_memory, generator=g, persistent_workers=False)
