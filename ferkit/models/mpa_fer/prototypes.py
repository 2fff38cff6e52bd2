"""Class prototypes for L_v (paper Eq. 6; docs/mpa_fer.md#d7-class-prototypes): mean global feature of the frozen,
un-prompted CLIP over ``n_proto`` training images per class, computed once with the evaluation transform and cached
on disk.

The cache key covers everything the prototypes depend on: the CLIP identity (architecture + weights SHA-256), the
data (a fingerprint of the data set), the label order, ``n_proto``, the subset seed, the construction rule and the
transform. A changed input gives a new key, never a stale file.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from ferkit.checkpoint import save_checkpoint
from ferkit.errors import DatasetError
from ferkit.labels import mapping

log = logging.getLogger(__name__)

_SAMPLE_ATTRS = ("samples", "imgs", "paths", "files", "image_paths")


def eval_transform(data_config: dict[str, Any]) -> Callable:
    """Evaluation transform of the model (its family's, see :mod:`ferkit.models.mpa_fer.transforms`)."""
    from ferkit.models.transforms import build_transform

    return build_transform(data_config, train=False)


def dataset_fingerprint(ds: Any) -> str:
    """SHA-256 describing a data set: its own ``fingerprint()`` if it has one, else class, length, label names,
    targets, ``root`` / ``split`` and the sample paths."""
    own = getattr(ds, "fingerprint", None)
    own = own() if callable(own) else own
    if isinstance(own, str) and own:
        return own
    h = hashlib.sha256()
    h.update(f"{type(ds).__module__}.{type(ds).__qualname__}|{len(ds)}".encode())
    h.update(json.dumps(list(getattr(ds, "label_names", []))).encode())
    h.update(json.dumps([int(t) for t in ds.targets]).encode())
    for attr in ("root", "split"):
        if hasattr(ds, attr):
            h.update(f"|{attr}={getattr(ds, attr)}".encode())
    for attr in _SAMPLE_ATTRS:
        items = getattr(ds, attr, None)
        if isinstance(items, Sequence) and not isinstance(items, str):
            for it in items:
                h.update(str(it[0] if isinstance(it, (tuple, list)) else it).encode() + b"\0")
            break
    return h.hexdigest()


def model_targets(ds: Any, label_names: Sequence[str]) -> list[int]:
    """The data set's targets re-indexed to ``label_names`` (by name; the orders may differ)."""
    if not hasattr(ds, "targets"):
        raise DatasetError("prototypes need a data set with `targets` (one class index per image)")
    src = list(getattr(ds, "label_names", label_names))
    index = mapping(src, label_names)
    missing = [src[i] for i, j in enumerate(index) if j is None]
    if missing:
        raise DatasetError(f"the data set has classes {missing} that the model does not know ({list(label_names)})")
    return [index[int(t)] for t in ds.targets]


def subset_indices(targets: Sequence[int], num_classes: int, n: int | str, seed: int) -> list[list[int]]:
    """Per class, the indices of its prototype images: all of them, or ``n`` drawn without replacement (seeded)."""
    by_class: list[list[int]] = [[] for _ in range(num_classes)]
    for i, t in enumerate(targets):
        by_class[t].append(i)
    gen = torch.Generator().manual_seed(seed)
    out = []
    for c, idx in enumerate(by_class):
        if not idx:
            raise DatasetError(f"class index {c} has no training image, so it has no prototype")
        if n != "all" and len(idx) > int(n):
            pick = torch.randperm(len(idx), generator=gen)[: int(n)].sort().values
            idx = [idx[i] for i in pick.tolist()]
        elif n != "all" and len(idx) < int(n):
            log.warning("class index %d has only %d images (< n_proto=%s); using all of them", c, len(idx), n)
        out.append(idx)
    return out


class _Images(Dataset):
    """(image tensor, class) for a list of indices of a data set whose own transform is disabled."""

    def __init__(self, ds: Any, items: list[tuple[int, int]], transform: Callable):
        self.ds, self.items, self.transform = ds, items, transform

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        idx, cls = self.items[i]
        image = self.ds[idx][0]
        return self.transform(image), cls


def raw_view(ds: Any) -> Any:
    """Shallow copy of ``ds`` that returns PIL images (its ``transform`` set to None); ``ds`` is not modified."""
    view = copy.copy(ds)
    if hasattr(view, "transform"):
        view.transform = None
    return view


@torch.no_grad()
def compute_prototypes(encode: Callable[[torch.Tensor], torch.Tensor], ds: Any, subsets: list[list[int]], *,
                       transform: Callable, norm: str = "per_image", device: str | torch.device = "cpu",
                       batch_size: int = 64, num_workers: int = 0) -> torch.Tensor:
    """Prototypes (C, E): per class the mean of ``encode(images)`` (B, E) over its subset.

    ``per_image``: features are L2-normalised before the mean and the mean is normalised again; ``raw_mean``: the
    plain mean (Eq. 6 literally).
    """
    items = [(i, c) for c, idx in enumerate(subsets) for i in idx]
    loader = DataLoader(_Images(raw_view(ds), items, transform), batch_size=batch_size, num_workers=num_workers)
    sums: torch.Tensor | None = None
    for images, classes in loader:
        z = encode(images.to(device)).float().cpu()  # (B, E)
        if norm == "per_image":
            z = torch.nn.functional.normalize(z, dim=-1)
        sums = torch.zeros(len(subsets), z.shape[1]) if sums is None else sums
        sums.index_add_(0, classes, z)
    counts = torch.tensor([len(s) for s in subsets], dtype=torch.float32)
    protos = sums / counts[:, None]
    return torch.nn.functional.normalize(protos, dim=-1) if norm == "per_image" else protos


def cache_key(fields: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def cache_file(cache_dir: str | os.PathLike, key: str) -> Path:
    return Path(cache_dir) / f"mpa_fer_prototypes-{key[:24]}.pt"


def read_cached(path: Path, key: str) -> torch.Tensor | None:
    """Prototypes stored under ``key`` at ``path``, or None (absent, other key, unreadable)."""
    if not path.is_file():
        return None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - a broken cache file is recomputed, not fatal
        log.warning("ignoring unreadable prototype cache %s: %s", path, e)
        return None
    if obj.get("key") != key:
        return None
    return obj["prototypes"]


def write_cached(path: Path, key: str, protos: torch.Tensor, fields: dict[str, Any], counts: list[int]) -> None:
    save_checkpoint({"key": key, "fields": fields, "counts": counts, "prototypes": protos.cpu()}, path)
