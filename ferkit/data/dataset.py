"""``FerDataset``: the one torch ``Dataset`` every loader returns.

A data set is a list of ``(source, target)`` samples plus the ordered canonical ``label_names`` that give the targets
their meaning. Reading errors become :class:`~ferkit.errors.DatasetError` naming the file (``on_error="raise"``), or
are logged once and replaced by the next readable sample together with *that* sample's target (``on_error="skip"``),
so a DataLoader worker never dies on a bad file and a label never drifts from its image.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch.utils.data import Dataset

from ferkit import labels as _labels
from ferkit.errors import DatasetError
from ferkit.image import load_pil

logger = logging.getLogger(__name__)

ON_ERROR = ("raise", "skip")
#: With ``on_error="skip"``, give up after this many unreadable samples in a row.
MAX_CONSECUTIVE_BAD = 64


def check_on_error(on_error: str) -> str:
    if on_error not in ON_ERROR:
        raise DatasetError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
    return on_error


class FerDataset(Dataset):
    """Labelled face images in one split of one data set.

    Attributes:
        name: registered data-set name (``"rafdb"``).
        split: resolved split (``"train"``, ``"val"`` or ``"test"``).
        root: data-set root folder (or file).
        label_names: canonical class names; target ``i`` means ``label_names[i]``.
        samples: ``(source, target)`` pairs; ``source`` is a file path, or ``"file:line N"`` for pixel-string CSVs.
        targets: the targets alone, ``len(samples)`` ints.
        transform: applied to the RGB ``PIL.Image`` in ``__getitem__`` (``None``: return the image).
        on_error: ``"raise"`` or ``"skip"``.
        info: layout details and what was dropped while loading (e.g. ``{"layout": "official", "dropped": {...}}``).
    """

    #: Names of attributes holding one entry per sample; subsetting (``with_label_names``) keeps them aligned.
    per_sample: tuple[str, ...] = ()

    def __init__(self, samples: Sequence[tuple[str, int]], label_names: Sequence[str], *, name: str, split: str,
                 root: str | Path, transform: Callable[[Image.Image], Any] | None = None, on_error: str = "raise",
                 info: dict[str, Any] | None = None):
        self.label_names: tuple[str, ...] = _labels.order(list(label_names))
        self.samples: list[tuple[str, int]] = [(str(s), int(t)) for s, t in samples]
        self.targets: list[int] = [t for _, t in self.samples]
        bad = sorted({t for t in self.targets if not 0 <= t < len(self.label_names)})
        if bad:
            raise DatasetError(f"{name}/{split}: targets {bad} outside 0..{len(self.label_names) - 1} "
                               f"for label names {list(self.label_names)}")
        self.name, self.split, self.root = name, split, Path(root)
        self.transform = transform
        self.on_error = check_on_error(on_error)
        self.info: dict[str, Any] = dict(info or {})
        self._reported: set[int] = set()
        self.soft_targets: list[tuple[float, ...]] | None = None

    def set_soft_targets(self, vectors: Sequence[Sequence[float]]) -> None:
        """Return ``torch.tensor(vectors[i])`` (float32) instead of the class index as sample ``i``'s target, e.g. a
        vote distribution (its first ``len(label_names)`` columns follow ``label_names``; further columns are free
        for auxiliary targets). ``targets`` keeps the hard labels (samplers, class counts)."""
        if len(vectors) != len(self.samples):
            raise DatasetError(f"{self.name}/{self.split}: {len(vectors)} soft targets for {len(self.samples)} samples")
        widths = {len(v) for v in vectors}
        if len(widths) > 1 or min(widths, default=len(self.label_names)) < len(self.label_names):
            raise DatasetError(f"{self.name}/{self.split}: soft targets need one common width >= "
                               f"{len(self.label_names)}, got widths {sorted(widths)}")
        self.soft_targets = [tuple(float(x) for x in v) for v in vectors]

    # -- reading ---------------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.samples)

    def _decode(self, index: int) -> Image.Image:
        """Decode sample ``index`` to RGB; subclasses override this for crops or in-memory pixels."""
        return load_pil(self.samples[index][0])

    def read(self, index: int) -> Image.Image:
        """Decode sample ``index`` (no transform, no skipping).

        Raises:
            DatasetError: the sample cannot be read; the message names the data set, split and file.
        """
        try:
            return self._decode(index)
        except DatasetError as e:
            raise type(e)(f"{self.name}/{self.split} sample {index}: {e}") from None

    def _fetch(self, index: int) -> tuple[Image.Image, int]:
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"{self.name}/{self.split}: index {index} out of range for {n} samples")
        index %= n
        for step in range(min(n, MAX_CONSECUTIVE_BAD)):
            j = (index + step) % n
            try:
                image = self.read(j)
                if self.soft_targets is not None:
                    return image, torch.tensor(self.soft_targets[j], dtype=torch.float32)
                return image, self.targets[j]
            except DatasetError as e:
                if self.on_error == "raise":
                    raise
                if j not in self._reported:
                    self._reported.add(j)
                    logger.warning("skipping unreadable sample (replaced by the next readable one): %s", e)
        raise DatasetError(f"{self.name}/{self.split}: {min(n, MAX_CONSECUTIVE_BAD)} consecutive samples from index "
                           f"{index} are unreadable; run `ferkit data check {self.name} {self.root}`")

    def __getitem__(self, index: int) -> tuple[Any, int]:
        image, target = self._fetch(index)
        if self.transform is not None:
            image = self.transform(image)
        return image, target

    # -- labels ----------------------------------------------------------------------------------------------------
    def class_counts(self) -> dict[str, int]:
        """Samples per class, every class of ``label_names`` included (in that order)."""
        counts = [0] * len(self.label_names)
        for t in self.targets:
            counts[t] += 1
        return dict(zip(self.label_names, counts))

    def with_label_names(self, label_names: Sequence[str] | str, *, drop_missing: bool = False) -> FerDataset:
        """A copy whose targets index ``label_names`` instead, remapped by class name.

        Args:
            label_names: an order name (``"rafdb"``) or a list of (alias-tolerant) class names.
            drop_missing: drop samples whose class is not in ``label_names`` instead of raising.
        """
        new = _labels.order(label_names)
        if self.soft_targets is not None and tuple(new) != tuple(self.label_names):
            raise DatasetError(f"{self.name}/{self.split}: soft targets are ordered {list(self.label_names)}; they "
                               f"cannot be remapped to {list(new)} (train the model in the data set's own order)")
        index = _labels.mapping(self.label_names, new, strict=not drop_missing)
        clone = self._copy()
        keep = [i for i, t in enumerate(self.targets) if index[t] is not None]
        clone._select(keep)
        clone.samples = [(s, index[t]) for s, t in clone.samples]
        clone.targets = [t for _, t in clone.samples]
        clone.label_names = new
        dropped = len(self) - len(keep)
        if dropped:
            clone.info.setdefault("dropped", {})["not in label_names"] = dropped
            logger.info("%s/%s: dropped %d samples whose class is not in %s", self.name, self.split, dropped, new)
        return clone

    def _copy(self) -> FerDataset:
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone.info = {k: (dict(v) if isinstance(v, dict) else v) for k, v in self.info.items()}
        clone._reported = set()
        return clone

    def _select(self, keep: Sequence[int]) -> None:
        """Keep only the samples at ``keep`` (and the matching entries of the :attr:`per_sample` attributes)."""
        for attr in ("samples", "targets", "soft_targets", *self.per_sample):
            values = getattr(self, attr, None)
            if values is not None:
                setattr(self, attr, [values[i] for i in keep])

    def __repr__(self) -> str:
        counts = ", ".join(f"{k}={v}" for k, v in self.class_counts().items())
        return f"{type(self).__name__}(name={self.name!r}, split={self.split!r}, n={len(self)}, {counts})"
