"""RAF-DB basic (Li et al. 2017): 12,271 train / 3,068 test aligned 100x100 faces, seven classes.

Labels 1..7 in ``EmoLabel/list_patition_label.txt`` (sic) are surprise, fear, disgust, happiness, sadness, anger,
neutral; targets are those codes minus one (``labels.DATASET_ORDERS["rafdb"]``). RAF-DB has no validation split:
``val`` is accepted as the test split, which is what POSTER V2 and MPA-FER select and report on.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

from ferkit import labels as _labels
from ferkit.data import _layout
from ferkit.data.dataset import FerDataset
from ferkit.data.registry import DatasetSpec, register_dataset
from ferkit.errors import DatasetError

logger = logging.getLogger(__name__)

NAME = "rafdb"
LABEL_FILE = "EmoLabel/list_patition_label.txt"
LAYOUT = """\
official RAF-DB basic (ROOT = the 'basic' folder, or a folder containing it):
  ROOT/EmoLabel/list_patition_label.txt     lines 'train_00001.jpg 5' / 'test_0001.jpg 1';
                                            labels 1..7 = surprise, fear, disgust, happiness, sadness, anger, neutral
  ROOT/Image/aligned/train_00001_aligned.jpg    100x100 aligned faces (images='aligned', the default)
  ROOT/Image/original/train_00001.jpg           original photos (images='original')
class-folder form (POSTER V2 style):
  ROOT/train/1 .. ROOT/train/7/*.jpg        folders 1..7 = the RAF-DB labels above (class names also accepted)
  ROOT/test/1 .. ROOT/test/7/*.jpg          (the test folder may also be called 'valid' or 'val')
"""
_FOLDER_SPLITS = {"test": ("valid", "val")}


def build_rafdb(root: Path, split: str, *, on_error: str = "raise", images: str = "aligned",
                layout: str = "auto") -> FerDataset:
    """RAF-DB basic ``split`` (``train``/``test``) from the official list file or a class-folder tree.

    Args:
        images: ``"aligned"`` (``Image/aligned/*_aligned.jpg``) or ``"original"`` (official layout only).
        layout: ``"official"``, ``"folder"`` or ``"auto"`` (official when the list file exists).
    """
    if images not in ("aligned", "original"):
        raise DatasetError(f"{NAME}: images must be 'aligned' or 'original', got {images!r}")
    if layout not in ("auto", "official", "folder"):
        raise DatasetError(f"{NAME}: layout must be 'auto', 'official' or 'folder', got {layout!r}")
    base = _find_basic(root)
    if layout == "official" or (layout == "auto" and base is not None):
        if base is None:
            raise _layout.layout_error(NAME, f"no {LABEL_FILE} under {root}", LAYOUT)
        return _official(base, split, images=images, on_error=on_error)
    folder = _layout.split_dir(root, split, _FOLDER_SPLITS)
    if folder is None:
        raise _layout.layout_error(NAME, f"found neither {LABEL_FILE} nor a {split}/ class-folder tree in {root}",
                                   LAYOUT)
    info: dict[str, Any] = {"layout": "folder", "folder": str(folder)}
    order = _labels.DATASET_ORDERS[NAME]
    to_name = functools.partial(_layout.folder_class, order=NAME)
    samples = _layout.scan_class_tree(folder, order, to_name, where=f"{NAME}/{split}", on_error=on_error, info=info)
    return FerDataset(samples, order, name=NAME, split=split, root=root, on_error=on_error, info=info)


def _find_basic(root: Path) -> Path | None:
    for base in (root, root / "basic"):
        if _layout.find(base, [LABEL_FILE]) is not None:
            return base
    return None


def _official(base: Path, split: str, *, images: str, on_error: str) -> FerDataset:
    label_file = _layout.find(base, [LABEL_FILE])
    image_dir = _layout.find(base, [f"Image/{images}"], kind="dir")
    if image_dir is None:
        raise _layout.layout_error(NAME, f"no Image/{images}/ folder in {base}", LAYOUT)
    info: dict[str, Any] = {"layout": "official", "label_file": str(label_file), "images": str(image_dir)}
    entries = read_label_file(label_file, on_error=on_error, info=info)
    order = _labels.DATASET_ORDERS[NAME]
    samples = []
    for file_name, name in entries:
        if file_name.startswith(split + "_"):
            stem, ext = Path(file_name).stem, Path(file_name).suffix
            image = f"{stem}_aligned{ext}" if images == "aligned" else file_name
            samples.append((str(image_dir / image), order.index(name)))
    if not samples:
        raise DatasetError(f"{NAME}: {label_file} lists no {split}_* images")
    keep = _layout.drop_missing(samples, where=f"{NAME}/{split}", on_error=on_error, info=info)
    samples = [samples[i] for i in keep]
    return FerDataset(samples, order, name=NAME, split=split, root=base, on_error=on_error, info=info)


def read_label_file(path: Path, *, on_error: str = "raise",
                    info: dict[str, Any] | None = None) -> list[tuple[str, str]]:
    """``(file name, canonical class)`` for each line ``'<name> <label 1..7>'`` of the RAF-DB list file."""
    info = info if info is not None else {}
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for number, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        try:
            if len(parts) != 2:
                raise ValueError(f"expected '<image name> <label 1..7>', got {line.strip()!r}")
            if not parts[0].startswith(("train_", "test_")):
                raise ValueError(f"image name {parts[0]!r} does not start with train_ or test_")
            if parts[0] in seen:
                raise ValueError(f"image {parts[0]!r} is listed twice")
            out.append((parts[0], _labels.from_code(NAME, parts[1])))
            seen.add(parts[0])
        except ValueError as e:
            _layout.report_problem(on_error, info, "invalid_rows", f"{path}:line {number}: {e}")
    return out


register_dataset(DatasetSpec(
    name=NAME, builder=build_rafdb, splits=("train", "test"), aliases={"val": "test"}, layout=LAYOUT,
    description="RAF-DB basic: EmoLabel/list_patition_label.txt + Image/aligned (or train|test/1..7/); 7 classes",
    official_sizes={"train": 12271, "test": 3068}))
