"""Helpers shared by the loaders: finding split folders and files, scanning class-folder trees, missing files."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from ferkit import labels as _labels
from ferkit.errors import DatasetError
from ferkit.image import is_image_file

logger = logging.getLogger(__name__)

#: Folder names accepted for each split (compared case-insensitively).
SPLIT_DIRS: dict[str, tuple[str, ...]] = {
    "train": ("train", "training"),
    "val": ("val", "valid", "validation"),
    "test": ("test", "testing"),
}


def layout_error(name: str, problem: str, layout: str) -> DatasetError:
    """A ``DatasetError`` stating the problem and the layout the loader expects."""
    return DatasetError(f"{name}: {problem}\nexpected layout:\n{layout.rstrip()}")


def child(root: Path, names: Iterable[str], *, kind: str = "any") -> Path | None:
    """The first entry of ``root`` whose name matches one of ``names`` (case-insensitively), or ``None``."""
    if not root.is_dir():
        return None
    entries = {e.name.lower(): e for e in os.scandir(root)}
    for n in names:
        e = entries.get(n.lower())
        if e is None:
            continue
        if kind == "dir" and not e.is_dir():
            continue
        if kind == "file" and not e.is_file():
            continue
        return Path(e.path)
    return None


def find(root: Path, relatives: Iterable[str], *, kind: str = "file") -> Path | None:
    """The first existing ``root / rel`` (each path component matched case-insensitively)."""
    for rel in relatives:
        here: Path | None = root
        parts = Path(rel).parts
        for i, part in enumerate(parts):
            here = child(here, [part], kind=kind if i == len(parts) - 1 else "dir") if here else None
        if here is not None:
            return here
    return None


def split_dir(root: Path, split: str, extra: dict[str, Sequence[str]] | None = None) -> Path | None:
    """The folder holding ``split`` under ``root`` (``val`` may be ``valid``/``validation``, ...)."""
    names = tuple((extra or {}).get(split, ())) + SPLIT_DIRS.get(split, (split,))
    return child(root, names, kind="dir")


def list_images(folder: Path) -> tuple[list[str], int]:
    """Sorted image file names directly in ``folder`` and the number of other (ignored) files."""
    images, other = [], 0
    for e in os.scandir(folder):
        if e.name.startswith(".") or not e.is_file():
            continue
        if is_image_file(e.name):
            images.append(e.name)
        else:
            other += 1
    return sorted(images), other


def folder_class(folder: str, order: str = "fer2013") -> str:
    """Canonical class of a class folder: a name or alias (``"Happy"``), or an integer code in the data set
    ``order`` (FER2013 ``"3"`` = happiness, RAF-DB ``"1"`` = surprise, AffectNet ``"1"`` = happiness)."""
    return _labels.from_code(order, folder) if folder.strip().isdigit() else _labels.canonical(folder)


def class_folders(folder: Path) -> list[str]:
    """Sorted names of the visible sub-folders (ImageFolder order: plain string sort)."""
    return sorted(e.name for e in os.scandir(folder) if e.is_dir() and not e.name.startswith("."))


def scan_class_tree(split_path: Path, label_names: Sequence[str], to_name: Callable[[str], str | None], *,
                    where: str, on_error: str, info: dict[str, Any]) -> list[tuple[str, int]]:
    """Samples of a ``<split>/<class>/<image>`` tree.

    ``to_name(folder)`` returns the canonical class of a folder, ``None`` to drop the folder on purpose (recorded in
    ``info["dropped"]``), or raises ``ValueError`` for an unknown folder (an error, or a logged skip with
    ``on_error="skip"``). An empty class folder is an error, or a logged skip.
    """
    index = {n: i for i, n in enumerate(label_names)}
    seen: dict[str, str] = {}
    samples: list[tuple[str, int]] = []
    for folder in class_folders(split_path):
        try:
            name = to_name(folder)
            if name is not None and name not in index:
                raise ValueError(f"class {name!r} is not one of {list(label_names)}")
        except ValueError as e:
            report_problem(on_error, info, "skipped_folders", f"{where}: class folder {split_path / folder}: {e}")
            continue
        if name is None:
            info.setdefault("dropped", {})[f"folder {folder}"] = len(list_images(split_path / folder)[0])
            continue
        if name in seen:
            raise DatasetError(f"{where}: class folders {seen[name]!r} and {folder!r} in {split_path} are both "
                               f"{name!r}; merge or rename one")
        seen[name] = folder
        files, other = list_images(split_path / folder)
        if other:
            info["ignored_files"] = info.get("ignored_files", 0) + other
        if not files:
            report_problem(on_error, info, "empty_classes",
                           f"{where}: class folder {split_path / folder} has no images")
        samples += [(str(split_path / folder / f), index[name]) for f in files]
    return samples


def report_problem(on_error: str, info: dict[str, Any], key: str, message: str) -> None:
    """Raise ``DatasetError(message)``, or with ``on_error="skip"`` log it and append it to ``info[key]``."""
    if on_error == "raise":
        raise DatasetError(message + " (pass on_error='skip' to skip it with a warning)")
    logger.warning("%s; skipped", message)
    info.setdefault(key, []).append(message)


def drop_missing(samples: Sequence[tuple[str, int]], *, where: str, on_error: str, info: dict[str, Any]) -> list[int]:
    """Indices of the samples whose file exists. Missing files raise (naming the first few), or are logged and left
    out with ``on_error="skip"`` (recorded in ``info["missing"]``)."""
    listing: dict[str, set[str]] = {}
    keep, missing = [], []
    for i, (path, _) in enumerate(samples):
        parent, base = os.path.split(path)
        if parent not in listing:
            try:
                listing[parent] = set(os.listdir(parent))
            except OSError:
                listing[parent] = set()
        (keep if base in listing[parent] else missing).append(i)
    if missing:
        shown = "\n  ".join(samples[i][0] for i in missing[:5])
        msg = f"{where}: {len(missing)} listed image file(s) are missing, e.g.\n  {shown}"
        if on_error == "raise":
            raise DatasetError(msg + "\n(pass on_error='skip' to drop them with a warning)")
        logger.warning("%s\ndropped them", msg)
        info["missing"] = [samples[i][0] for i in missing]
    return keep


def parse_int(value: str, what: str) -> int:
    try:
        return int(str(value).strip())
    except ValueError:
        raise ValueError(f"{what} {value!r} is not an integer") from None
