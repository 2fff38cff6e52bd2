"""Seeded class-aware subsets of a data set (training on a budget, evaluation on a sample)."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def stratified_indices(targets: Sequence[int], n: int, seed: int) -> list[int]:
    """``n`` indices drawn without replacement, each class keeping (to rounding) its share; sorted.

    Classes get ``floor(n * share)`` samples, the remainder goes to the largest fractional parts (every class with
    samples keeps at least one when ``n`` >= the number of classes).
    """
    if n >= len(targets):
        return list(range(len(targets)))
    by_class: dict[int, list[int]] = {}
    for i, t in enumerate(targets):
        by_class.setdefault(int(t), []).append(i)
    total = len(targets)
    quota = {c: n * len(ix) / total for c, ix in by_class.items()}
    take = {c: max(int(q), 1 if n >= len(by_class) else 0) for c, q in quota.items()}
    for c in sorted(by_class, key=lambda c: quota[c] - int(quota[c]), reverse=True):
        if sum(take.values()) >= n:
            break
        take[c] += 1
    while sum(take.values()) > n:  # the minimum of one per class overshot: trim the largest classes
        take[max(take, key=take.get)] -= 1
    g = torch.Generator().manual_seed(seed)
    chosen: list[int] = []
    for c, ix in sorted(by_class.items()):
        perm = torch.randperm(len(ix), generator=g)[: take[c]].tolist()
        chosen += [ix[j] for j in perm]
    return sorted(chosen)


def balanced_indices(targets: Sequence[int], n: int, seed: int) -> list[int]:
    """About ``n / classes`` random indices per class (all of a smaller class; the rest fills up the others); sorted."""
    by_class: dict[int, list[int]] = {}
    for i, t in enumerate(targets):
        by_class.setdefault(int(t), []).append(i)
    g = torch.Generator().manual_seed(seed)
    pools = {c: [ix[j] for j in torch.randperm(len(ix), generator=g).tolist()] for c, ix in sorted(by_class.items())}
    take = dict.fromkeys(pools, 0)
    left = min(n, len(targets))
    while left > 0:
        open_classes = [c for c in pools if take[c] < len(pools[c])]
        share = max(left // len(open_classes), 1)
        for c in open_classes:
            extra = min(share, len(pools[c]) - take[c], left)
            take[c] += extra
            left -= extra
    return sorted(i for c, ix in pools.items() for i in ix[: take[c]])
