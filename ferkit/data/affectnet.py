"""AffectNet (Mollahosseini et al. 2017), manually annotated part: AffectNet-7 and AffectNet-8.

``expression`` codes 0..7 are neutral, happiness, sadness, surprise, fear, disgust, anger, contempt
(``labels.DATASET_ORDERS["affectnet8"]``); 8 none, 9 uncertain and 10 no-face are dropped, and AffectNet-7 also drops
contempt. The official ``validation.csv`` is the test set (500 images per class): splits ``val`` and ``test`` both
mean it.
"""

from __future__ import annotations

import csv
import functools
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from ferkit import labels as _labels
from ferkit.data import _layout
from ferkit.data.dataset import FerDataset
from ferkit.data.registry import DatasetSpec, register_dataset
from ferkit.errors import DatasetError
from ferkit.image import ImageReadError, load_pil

logger = logging.getLogger(__name__)

COLUMNS = ("subDirectory_filePath", "face_x", "face_y", "face_width", "face_height", "facial_landmarks",
           "expression", "valence", "arousal")
LAYOUT = """\
official form (CSV lists with face boxes):
  ROOT/training.csv, ROOT/validation.csv      (or ROOT/Manually_Annotated_file_lists/*.csv; header optional)
      columns subDirectory_filePath, face_x, face_y, face_width, face_height, facial_landmarks,
              expression, valence, arousal
      expression 0..7 = neutral, happiness, sadness, surprise, fear, disgust, anger, contempt;
                 8 none, 9 uncertain, 10 no-face (dropped); AffectNet-7 also drops 7 (contempt)
  ROOT/Manually_Annotated_Images/<subDirectory_filePath>     images, cropped to the face box (crop=True)
      (also Manually_Annotated/Manually_Annotated_Images or Manually_Annotated_compressed/Manually_Annotated_Images)
class-folder form:
  ROOT/train/<class>/*.jpg    folders 0..7 (AffectNet codes) or class names
  ROOT/val/<class>/*.jpg      the validation (= test) set; also 'valid', 'validation' or 'test'
"""
_CSV = {"train": "training.csv", "val": "validation.csv"}
_IMAGE_DIRS = ("Manually_Annotated_Images", "Manually_Annotated/Manually_Annotated_Images",
               "Manually_Annotated_compressed/Manually_Annotated_Images")
_FOLDER_SPLITS = {"val": ("test",)}


class CroppedDataset(FerDataset):
    """A :class:`FerDataset` whose images are cropped to a per-sample face box ``(x, y, w, h)`` (``None``: whole)."""

    per_sample = ("boxes",)

    def __init__(self, samples: Sequence[tuple[str, int]], label_names: Sequence[str],
                 boxes: Sequence[tuple[int, int, int, int] | None], **kwargs: Any):
        super().__init__(samples, label_names, **kwargs)
        self.boxes = list(boxes)

    def _decode(self, index: int) -> Image.Image:
        image = load_pil(self.samples[index][0])
        box = self.boxes[index]
        if box is None:
            return image
        x, y, w, h = box
        x0, y0, x1, y1 = max(0, x), max(0, y), min(image.width, x + w), min(image.height, y + h)
        if x1 <= x0 or y1 <= y0:
            raise ImageReadError(f"{self.samples[index][0]}: face box {box} lies outside the {image.width}x"
                                 f"{image.height} image")
        return image.crop((x0, y0, x1, y1))


def _build(root: Path, split: str, num_classes: int, *, on_error: str, layout: str, crop: bool,
           images_dir: str | None) -> FerDataset:
    name = f"affectnet{num_classes}"
    if layout not in ("auto", "csv", "folder"):
        raise DatasetError(f"{name}: layout must be 'auto', 'csv' or 'folder', got {layout!r}")
    table = _layout.find(root, [_CSV[split], f"Manually_Annotated_file_lists/{_CSV[split]}"])
    if layout == "csv" or (layout == "auto" and table is not None):
        if table is None:
            raise _layout.layout_error(name, f"no {_CSV[split]} in {root}", LAYOUT)
        return _from_csv(root, table, split, num_classes, on_error=on_error, crop=crop, images_dir=images_dir)
    folder = _layout.split_dir(root, split, _FOLDER_SPLITS)
    if folder is None:
        raise _layout.layout_error(name, f"found neither {_CSV[split]} nor a {split}/ class-folder tree in {root}",
                                   LAYOUT)
    info: dict[str, Any] = {"layout": "folder", "folder": str(folder)}
    order = _labels.DATASET_ORDERS[name]
    samples = _layout.scan_class_tree(folder, order, functools.partial(_folder_class, order=order),
                                      where=f"{name}/{split}", on_error=on_error, info=info)
    return FerDataset(samples, order, name=name, split=split, root=root, on_error=on_error, info=info)


def _folder_class(folder: str, order: Sequence[str]) -> str | None:
    if folder.strip().isdigit() and int(folder) in _labels.AFFECTNET_NON_EXPRESSION:
        return None
    name = _layout.folder_class(folder, "affectnet8")
    return name if name in order else None


def _image_root(root: Path, images_dir: str | None, name: str) -> Path:
    if images_dir is not None:
        path = Path(images_dir) if Path(images_dir).is_absolute() else root / images_dir
        if not path.is_dir():
            raise DatasetError(f"{name}: images_dir {path} is not a folder")
        return path
    found = _layout.find(root, _IMAGE_DIRS, kind="dir")
    if found is None:
        raise _layout.layout_error(name, f"no Manually_Annotated_Images/ folder in {root} (or pass images_dir=)",
                                   LAYOUT)
    return found


def _from_csv(root: Path, table: Path, split: str, num_classes: int, *, on_error: str, crop: bool,
              images_dir: str | None) -> FerDataset:
    name = f"affectnet{num_classes}"
    image_root = _image_root(root, images_dir, name)
    order = _labels.DATASET_ORDERS[name]
    info: dict[str, Any] = {"layout": "csv", "csv": str(table), "images": str(image_root), "dropped": {}}
    samples, boxes = [], []
    for line, row in _read_table(table):
        try:
            path, box, code = _parse_row(row)
        except ValueError as e:
            _layout.report_problem(on_error, info, "invalid_rows", f"{table}:line {line}: {e}")
            continue
        label = _labels.AFFECTNET_NON_EXPRESSION.get(code) or _labels.from_code("affectnet8", code)
        if label not in order:
            key = f"{code} {label}"
            info["dropped"][key] = info["dropped"].get(key, 0) + 1
            continue
        samples.append((str(image_root / path), order.index(label)))
        boxes.append(box if crop else None)
    keep = _layout.drop_missing(samples, where=f"{name}/{split}", on_error=on_error, info=info)
    samples, boxes = [samples[i] for i in keep], [boxes[i] for i in keep]
    if not samples:
        raise DatasetError(f"{name}: {table} has no usable rows")
    return CroppedDataset(samples, order, boxes, name=name, split=split, root=root, on_error=on_error, info=info)


def _read_table(path: Path):
    """Yield ``(line, row)`` with ``row`` a list in :data:`COLUMNS` order; the header line is optional."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        for row in reader:
            if not row or all(not c.strip() for c in row):
                continue
            if reader.line_num == 1 and row[0].strip().lower() == COLUMNS[0].lower():
                continue
            yield reader.line_num, row


def _parse_row(row: list[str]) -> tuple[str, tuple[int, int, int, int], int]:
    if len(row) < 7:
        raise ValueError(f"expected {len(COLUMNS)} columns ({', '.join(COLUMNS)}), got {len(row)}")
    path = row[0].strip()
    if not path:
        raise ValueError("empty subDirectory_filePath")
    try:
        box = tuple(int(float(v)) for v in row[1:5])
    except ValueError:
        raise ValueError(f"face box {row[1:5]} is not numeric") from None
    if box[2] <= 0 or box[3] <= 0:
        raise ValueError(f"face box {box} has no area")
    code = _layout.parse_int(row[6], "expression")
    if code not in _labels.AFFECTNET_NON_EXPRESSION and not 0 <= code < 8:
        raise ValueError(f"expression {code} is not one of 0..10")
    return path, box, code  # type: ignore[return-value]


def build_affectnet7(root: Path, split: str, *, on_error: str = "raise", layout: str = "auto", crop: bool = True,
                     images_dir: str | None = None) -> FerDataset:
    """AffectNet-7 ``split`` (``train`` = training.csv, ``val`` = validation.csv = the test set).

    Args:
        layout: ``"csv"`` (official lists), ``"folder"`` (class folders) or ``"auto"`` (CSV when present).
        crop: crop each image to its CSV face box (official form only).
        images_dir: image folder if not one of the standard names (relative to ``root`` or absolute).
    """
    return _build(root, split, 7, on_error=on_error, layout=layout, crop=crop, images_dir=images_dir)


def build_affectnet8(root: Path, split: str, *, on_error: str = "raise", layout: str = "auto", crop: bool = True,
                     images_dir: str | None = None) -> FerDataset:
    """AffectNet-8 ``split``; options as :func:`build_affectnet7`."""
    return _build(root, split, 8, on_error=on_error, layout=layout, crop=crop, images_dir=images_dir)


for _n, _builder, _sizes in ((7, build_affectnet7, {"train": 283901, "val": 3500}),
                             (8, build_affectnet8, {"train": 287651, "val": 4000})):
    register_dataset(DatasetSpec(
        name=f"affectnet{_n}", builder=_builder, splits=("train", "val"), aliases={"test": "val"}, layout=LAYOUT,
        description=f"AffectNet-{_n}: training.csv/validation.csv + Manually_Annotated_Images (face-box crop) "
                    "or class folders; val = test",
        official_sizes=_sizes))
