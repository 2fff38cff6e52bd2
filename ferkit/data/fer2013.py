"""FER2013 (Goodfellow et al. 2013): the original ``fer2013.csv`` with pixel strings, or an image-folder copy.

Splits: ``train`` = Training, ``val`` = PublicTest, ``test`` = PrivateTest. Targets follow the FER2013 order
(``labels.DATASET_ORDERS["fer2013"]``) in both forms; folders are matched to it by class name.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ferkit import labels as _labels
from ferkit.data import _layout
from ferkit.data._pixels import USAGE_NAMES, USAGE_SPLITS, PixelDataset, header, parse_pixels, read_rows
from ferkit.data.dataset import FerDataset
from ferkit.data.registry import DatasetSpec, register_dataset
from ferkit.errors import DatasetError

logger = logging.getLogger(__name__)

NAME = "fer2013"
LAYOUT = """\
CSV form (the Kaggle original; ROOT may also be the CSV file itself or contain fer2013/fer2013.csv):
  ROOT/fer2013.csv            columns emotion,pixels,Usage; emotion 0..6 = anger, disgust, fear, happiness,
                              sadness, surprise, neutral; pixels = 2304 grey values (48x48);
                              Usage Training -> train, PublicTest -> val, PrivateTest -> test
image-folder form:
  ROOT/train/<class>/*.jpg    class folders anger, disgust, fear, happiness, neutral, sadness, surprise
  ROOT/val/<class>/*.jpg      (PublicTest; also 'valid' or 'PublicTest'; aliases such as angry/happy/sad
  ROOT/test/<class>/*.jpg      or the FER2013 codes 0..6 as folder names are accepted; test = PrivateTest, optional)
  ROOT/labels.csv             optional path,label,split,clean (clean_only=True drops rows with clean = 0)
"""
_FOLDER_SPLITS = {"val": ("PublicTest",), "test": ("PrivateTest",)}


def build_fer2013(root: Path, split: str, *, on_error: str = "raise", layout: str = "auto",
                  clean_only: bool = False) -> FerDataset:
    """FER2013 ``split`` from the CSV (``layout="csv"``) or image-folder (``"folder"``) form; ``"auto"`` picks the
    folder form when ``ROOT/<split>/`` exists, else the CSV. ``clean_only`` (folder form) drops the rows that
    ``ROOT/labels.csv`` marks ``clean = 0`` (duplicates and near-blank images)."""
    if layout not in ("auto", "csv", "folder"):
        raise DatasetError(f"{NAME}: layout must be 'auto', 'csv' or 'folder', got {layout!r}")
    csv_path = root if root.is_file() else _layout.find(root, ["fer2013.csv", "fer2013/fer2013.csv"])
    folder = _layout.split_dir(root, split, _FOLDER_SPLITS) if root.is_dir() else None
    if layout == "folder" or (layout == "auto" and folder is not None):
        if folder is None:
            raise _layout.layout_error(NAME, f"no {split} folder in {root}", LAYOUT)
        return _from_folder(root, folder, split, on_error=on_error, clean_only=clean_only)
    if csv_path is None:
        raise _layout.layout_error(NAME, f"found neither fer2013.csv nor a {split}/ class-folder tree in {root}",
                                   LAYOUT)
    if clean_only:
        raise DatasetError(f"{NAME}: clean_only needs the image-folder form with labels.csv")
    return load_pixel_csv(csv_path, split, on_error=on_error)


def _from_folder(root: Path, folder: Path, split: str, *, on_error: str, clean_only: bool) -> FerDataset:
    info: dict[str, Any] = {"layout": "folder", "folder": str(folder)}
    where = f"{NAME}/{split}"
    order = _labels.DATASET_ORDERS[NAME]
    samples = _layout.scan_class_tree(folder, order, _layout.folder_class, where=where, on_error=on_error, info=info)
    if clean_only:
        samples = _drop_unclean(root, samples, info)
    return FerDataset(samples, order, name=NAME, split=split, root=root, on_error=on_error, info=info)


def _drop_unclean(root: Path, samples: list[tuple[str, int]], info: dict[str, Any]) -> list[tuple[str, int]]:
    table = root / "labels.csv"
    if not table.is_file() or "clean" not in header(table):
        raise DatasetError(f"{NAME}: clean_only needs {table} with a 'clean' column (path,label,split,clean)")
    unclean = {str((root / row["path"]).resolve()) for _, row in read_rows(table)
               if row.get("clean", "").strip() == "0"}
    kept = [s for s in samples if str(Path(s[0]).resolve()) not in unclean]
    info.setdefault("dropped", {})["clean = 0"] = len(samples) - len(kept)
    return kept


def load_pixel_csv(path: Path, split: str, *, on_error: str) -> PixelDataset:
    """The ``split`` rows of a FER2013-style CSV (``emotion,pixels,Usage``)."""
    cols = header(path)
    missing = [c for c in ("emotion", "pixels", "usage") if c not in cols]
    if missing:
        raise _layout.layout_error(NAME, f"{path} lacks column(s) {missing}; its header is {cols}", LAYOUT)
    info: dict[str, Any] = {"layout": "csv", "csv": str(path)}
    samples, pixels = [], []
    order = _labels.DATASET_ORDERS[NAME]
    for line, row in read_rows(path):
        if USAGE_SPLITS.get(row.get("usage", "").strip().lower()) != split:
            continue
        try:
            name = _labels.from_code(NAME, row["emotion"])
            image = parse_pixels(row["pixels"])
        except ValueError as e:
            _layout.report_problem(on_error, info, "invalid_rows", f"{path}:line {line}: {e}")
            continue
        samples.append((f"{path}:line {line}", order.index(name)))
        pixels.append(image)
    _check_nonempty(samples, path, split)
    return PixelDataset(samples, order, pixels, name=NAME, split=split, root=path, on_error=on_error, info=info)


def _check_nonempty(samples: list, path: Path, split: str) -> None:
    if not samples:
        raise DatasetError(f"{NAME}: {path} has no usable rows with Usage = {USAGE_NAMES[split]} (the {split} split)")


register_dataset(DatasetSpec(
    name=NAME, builder=build_fer2013, splits=("train", "val", "test"), layout=LAYOUT,
    description="FER2013 (Kaggle): fer2013.csv pixel strings or train|val|test/<class>/ images; val = PublicTest",
    optional_splits=("val", "test"), official_sizes={"train": 28709, "val": 3589, "test": 3589}))
