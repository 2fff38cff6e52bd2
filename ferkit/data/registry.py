"""Data sets by name: ``build_dataset("rafdb", root, "train")``, ``list_datasets()``.

Each loader module registers a :class:`DatasetSpec` (builder, splits, split aliases, expected layout) at import.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ferkit.data.dataset import FerDataset, check_on_error
from ferkit.errors import DatasetError

logger = logging.getLogger(__name__)

#: Split spellings accepted everywhere.
SPLIT_SYNONYMS = {"training": "train", "valid": "val", "validation": "val", "testing": "test"}
_NAME_ALIASES = {"raf_db": "rafdb", "raf": "rafdb", "caers": "caer_s", "fer_plus": "ferplus", "fer+": "ferplus",
                 "fer_2013": "fer2013", "imagefolder": "folder", "affectnet_7": "affectnet7",
                 "affectnet_8": "affectnet8"}


@dataclass(frozen=True)
class DatasetSpec:
    """How to build one named data set.

    Attributes:
        name: registered name.
        builder: ``builder(root: Path, split: str, *, on_error: str, **options) -> FerDataset``.
        splits: native splits, in order (``("train", "test")``).
        description: one line for ``ferkit data list``.
        layout: the expected folder tree, shown when a layout is wrong and in the docs.
        aliases: extra split names and the native split they mean (``{"val": "test"}``), documented per data set.
        optional_splits: splits a valid copy may lack (``data check`` notes their absence instead of failing).
        official_sizes: published sample counts per split, shown by ``data check`` for comparison.
    """

    name: str
    builder: Callable[..., FerDataset]
    splits: tuple[str, ...]
    description: str
    layout: str
    aliases: Mapping[str, str] = field(default_factory=dict)
    optional_splits: tuple[str, ...] = ()
    official_sizes: Mapping[str, Any] = field(default_factory=dict)

    @property
    def options(self) -> tuple[str, ...]:
        """Keyword options the builder accepts (besides ``on_error``)."""
        params = inspect.signature(self.builder).parameters.values()
        return tuple(p.name for p in params if p.kind is p.KEYWORD_ONLY and p.name != "on_error")

    def check_options(self, options: Mapping[str, Any]) -> None:
        """Raise ``DatasetError`` naming the accepted options if ``options`` has a key the builder does not take."""
        unknown = sorted(set(options) - set(self.options) - {"label_names"})
        if unknown:
            raise DatasetError(f"{self.name}: unknown option(s) {unknown}; accepted: "
                               f"{', '.join(self.options + ('label_names',))}")

    def resolve_split(self, split: str) -> str:
        """Native split for ``split`` (synonyms and aliases applied); raises naming the valid splits."""
        key = SPLIT_SYNONYMS.get(str(split).strip().lower(), str(split).strip().lower())
        if key in self.splits:
            return key
        if key in self.aliases:
            logger.info("%s: split %r is the native %r split", self.name, split, self.aliases[key])
            return self.aliases[key]
        valid = list(self.splits) + [f"{a} (= {t})" for a, t in self.aliases.items()]
        raise DatasetError(f"{self.name} has no split {split!r}; valid splits: {', '.join(valid)}")


_REGISTRY: dict[str, DatasetSpec] = {}


def register_dataset(spec: DatasetSpec) -> DatasetSpec:
    """Add ``spec`` to the registry; a duplicate name raises ``ValueError``."""
    if spec.name in _REGISTRY:
        raise ValueError(f"data set {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec
    return spec


def list_datasets() -> list[str]:
    """Registered data-set names, sorted."""
    return sorted(_REGISTRY)


def get_spec(name: str) -> DatasetSpec:
    """The :class:`DatasetSpec` of ``name`` (case, ``-`` and common spellings such as ``raf-db`` tolerated)."""
    key = str(name).strip().lower().replace("-", "_")
    key = _NAME_ALIASES.get(key, key)
    if key not in _REGISTRY:
        raise DatasetError(f"unknown data set {name!r}; registered: {', '.join(list_datasets())}")
    return _REGISTRY[key]


def build_dataset(name: str, root: str | Path, split: str, *, transform: Callable | None = None,
                  on_error: str = "raise", **options: Any) -> FerDataset:
    """Build the ``split`` of data set ``name`` stored under ``root``.

    Args:
        name: registered name, see :func:`list_datasets` (``rafdb``, ``affectnet7``, ``affectnet8``, ``ferplus``,
            ``caer_s``, ``fer2013``, ``folder``, ``csv``).
        root: the data set's root folder (or CSV file where the loader accepts one).
        split: ``"train"``, ``"val"`` or ``"test"`` where the data set has it (aliases per data set, see the docs).
        transform: callable applied to the RGB ``PIL.Image``.
        on_error: ``"raise"`` (default) or ``"skip"`` (log and skip bad rows, missing or unreadable files).
        **options: loader options (e.g. ``label_rule="majority"`` for FERPlus); ``label_names=`` is accepted by
            every loader and remaps the targets to that order by class name.

    Raises:
        DatasetError: unknown name, split or option; a wrong layout (the message shows the expected one); bad data.
    """
    spec = get_spec(name)
    resolved = spec.resolve_split(split)
    check_on_error(on_error)
    spec.check_options(options)
    root = Path(root).expanduser()
    if not root.exists():
        raise DatasetError(f"{spec.name}: root {root} does not exist\nexpected layout:\n{spec.layout.rstrip()}")
    label_names = options.pop("label_names", None) if "label_names" not in spec.options else None
    ds = spec.builder(root, resolved, on_error=on_error, **options)
    if label_names is not None:
        ds = ds.with_label_names(label_names)
    ds.transform = transform
    return ds
