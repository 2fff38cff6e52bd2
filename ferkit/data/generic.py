"""Generic layouts: class folders (``folder``) and ``path,label`` tables (``csv``).

Class names come from the folder names / label column, normalised with :func:`ferkit.labels.canonical` ("Happy",
"angry" and "sad" are accepted; anything else is an error naming the folder or row and the vocabulary). Without
``label_names=`` the classes found across all splits, sorted by canonical name, are the label order, so every split
of one copy shares it. Integer labels (folders ``0..6``, label column ``3``) need ``label_names=`` and
``index_base=`` (0 or 1): a guessed base would silently shift every label.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ferkit import labels as _labels
from ferkit.data import _layout
from ferkit.data._pixels import USAGE_SPLITS, header, read_rows
from ferkit.data.dataset import FerDataset
from ferkit.data.registry import SPLIT_SYNONYMS, DatasetSpec, register_dataset
from ferkit.errors import DatasetError

logger = logging.getLogger(__name__)

FOLDER_LAYOUT = """\
  ROOT/train/<class>/*.jpg    class folders named by expression (neutral, happiness/happy, sadness/sad, surprise,
  ROOT/val/<class>/*.jpg      fear, disgust, anger/angry, contempt), or integers with label_names= and index_base=
  ROOT/test/<class>/*.jpg     (val may be 'valid' or 'validation'; only the splits you use need to exist)
"""
CSV_LAYOUT = """\
  ROOT.csv, or ROOT/labels.csv with a split column, or ROOT/train.csv, ROOT/val.csv, ROOT/test.csv
  columns (header required): path,label[,split]  -- path relative to the CSV's folder (or absolute);
  label = expression name or alias (integers need label_names= and index_base=); split = train|val|test
"""


def _label_to_name(value: str, label_names: Sequence[str] | None, index_base: int | None) -> str:
    text = str(value).strip()
    if not text.lstrip("-").isdigit():
        return _labels.canonical(text)
    if label_names is None or index_base is None:
        raise ValueError(f"integer label {text!r} needs label_names= (the order) and index_base= (0 or 1)")
    i = int(text) - index_base
    if not 0 <= i < len(label_names):
        raise ValueError(f"label {text!r} is outside {index_base}..{index_base + len(label_names) - 1}")
    return label_names[i]


def _resolve_order(values: Iterable[str], label_names: Sequence[str] | str | None, index_base: int | None,
                   where: str) -> tuple[str, ...]:
    """The label order: ``label_names`` if given, else the distinct valid classes among ``values``, sorted."""
    if index_base not in (None, 0, 1):
        raise DatasetError(f"{where}: index_base must be 0 or 1, got {index_base!r}")
    if label_names is not None:
        return _labels.order(label_names)
    names, integers = set(), 0
    for v in values:
        try:
            names.add(_label_to_name(v, None, index_base))
        except ValueError:
            integers += str(v).strip().lstrip("-").isdigit()  # other bad values are reported per folder/row
    if integers:
        raise DatasetError(f"{where}: integer labels need label_names= (the order they index) and index_base= "
                           "(0 or 1); ferkit does not guess which data set's order they follow")
    if not names:
        raise DatasetError(f"{where}: found no class names; expected one of {', '.join(_labels.CANONICAL)} "
                           "(or integer labels with label_names= and index_base=)")
    return tuple(sorted(names))


def build_folder(root: Path, split: str, *, on_error: str = "raise", label_names: Sequence[str] | str | None = None,
                 index_base: int | None = None) -> FerDataset:
    """Class-folder data set ``ROOT/<split>/<class>/<image>``.

    Args:
        label_names: the label order (an order name such as ``"rafdb"`` or a list); default: classes found.
        index_base: 0 or 1 when folders are integer indices into ``label_names``.
    """
    folder = _layout.split_dir(root, split)
    if folder is None:
        present = [d for d in _layout.class_folders(root)] if root.is_dir() else []
        raise _layout.layout_error("folder", f"no {split}/ folder in {root} (found {present})", FOLDER_LAYOUT)
    all_splits = [p for s in _layout.SPLIT_DIRS if (p := _layout.split_dir(root, s)) is not None]
    order = _resolve_order((f for p in all_splits for f in _layout.class_folders(p)), label_names, index_base,
                           f"folder/{split}")
    info: dict[str, Any] = {"layout": "folder", "folder": str(folder)}
    to_name = functools.partial(_label_to_name, label_names=order if label_names is not None else None,
                                index_base=index_base)
    samples = _layout.scan_class_tree(folder, order, to_name, where=f"folder/{split}", on_error=on_error, info=info)
    return FerDataset(samples, order, name="folder", split=split, root=root, on_error=on_error, info=info)


def _csv_table(root: Path, split: str) -> tuple[Path, bool]:
    """The CSV to read and whether its rows must be filtered by a split column."""
    if root.is_file():
        return root, True
    per_split = _layout.child(root, [f"{n}.csv" for n in _layout.SPLIT_DIRS[split]], kind="file")
    if per_split is not None:
        return per_split, False
    table = _layout.child(root, ["labels.csv"], kind="file")
    if table is None:
        raise _layout.layout_error("csv", f"no {split}.csv or labels.csv in {root}", CSV_LAYOUT)
    return table, True


def _row_split(value: str) -> str:
    key = value.strip().lower()
    return USAGE_SPLITS.get(key) or SPLIT_SYNONYMS.get(key, key)


def build_csv(root: Path, split: str, *, on_error: str = "raise", label_names: Sequence[str] | str | None = None,
              index_base: int | None = None, path_column: str = "path", label_column: str = "label",
              split_column: str = "split") -> FerDataset:
    """Table data set: a CSV with ``path,label[,split]`` columns (names configurable).

    A CSV without the split column is used whole for whichever split is asked (with a warning).
    """
    table, filtered = _csv_table(root, split)
    cols = header(table)
    pc, lc, sc = path_column.lower(), label_column.lower(), split_column.lower()
    if pc not in cols or lc not in cols:
        raise _layout.layout_error("csv", f"{table} needs columns {path_column!r} and {label_column!r}; "
                                          f"its header is {cols}", CSV_LAYOUT)
    rows = list(read_rows(table))
    order = _resolve_order((r.get(lc, "") for _, r in rows), label_names, index_base, f"csv/{split}")
    if filtered and sc in cols:
        rows = [(n, r) for n, r in rows if _row_split(r.get(sc, "")) == split]
    info: dict[str, Any] = {"layout": "csv", "csv": str(table)}
    if filtered and sc not in cols:
        logger.warning("%s has no %r column: using all %d rows as the %s split", table, split_column, len(rows), split)
        info["whole_table"] = True
    samples = _csv_samples(rows, table, order, pc, lc, explicit=label_names is not None, index_base=index_base,
                           on_error=on_error, info=info)
    keep = _layout.drop_missing(samples, where=f"csv/{split}", on_error=on_error, info=info)
    samples = [samples[i] for i in keep]
    if not samples:
        raise DatasetError(f"csv: {table} has no usable rows for the {split} split")
    return FerDataset(samples, order, name="csv", split=split, root=root, on_error=on_error, info=info)


def _csv_samples(rows: list[tuple[int, dict[str, str]]], table: Path, order: Sequence[str], pc: str, lc: str, *,
                 explicit: bool, index_base: int | None, on_error: str, info: dict[str, Any]) -> list[tuple[str, int]]:
    samples = []
    for line, row in rows:
        try:
            path = row.get(pc, "").strip()
            if not path:
                raise ValueError("empty path")
            name = _label_to_name(row.get(lc, ""), order if explicit else None, index_base)
            if name not in order:
                raise ValueError(f"class {name!r} is not one of {list(order)}")
        except ValueError as e:
            _layout.report_problem(on_error, info, "invalid_rows", f"{table}:line {line}: {e}")
            continue
        samples.append((str(table.parent / path), order.index(name)))
    return samples


register_dataset(DatasetSpec(
    name="folder", builder=build_folder, splits=("train", "val", "test"), layout=FOLDER_LAYOUT,
    description="generic class folders ROOT/<split>/<class>/ (class names normalised to the ferkit vocabulary)",
    optional_splits=("train", "val", "test")))
register_dataset(DatasetSpec(
    name="csv", builder=build_csv, splits=("train", "val", "test"), layout=CSV_LAYOUT,
    description="generic path,label[,split] CSV (labels normalised to the ferkit vocabulary)",
    optional_splits=("train", "val", "test")))
