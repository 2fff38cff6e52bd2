"""CAER-S (Lee et al. 2019): static frames of TV-show clips, seven classes in ``train|test/<Class>/`` folders.

Folders Anger, Disgust, Fear, Happy, Neutral, Sad, Surprise in ImageFolder's (alphabetical) order give the targets
(``labels.DATASET_ORDERS["caer_s"]``), as in POSTER V2's CAER-S run. There is no validation split: ``val`` is
accepted as the test split, which POSTER V2 selects and reports on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ferkit import labels as _labels
from ferkit.data import _layout
from ferkit.data.dataset import FerDataset
from ferkit.data.registry import DatasetSpec, register_dataset

NAME = "caer_s"
LAYOUT = """\
  ROOT/train/Anger/*.png   ROOT/train/Disgust/ ... ROOT/train/Surprise/   (folders Anger, Disgust, Fear, Happy,
  ROOT/test/Anger/*.png    ...                                             Neutral, Sad, Surprise)
  (ROOT may also contain a CAER-S/ folder holding train/ and test/)
"""


def build_caer_s(root: Path, split: str, *, on_error: str = "raise") -> FerDataset:
    """CAER-S ``split`` (``train``/``test``) from its class folders."""
    base = root if _layout.split_dir(root, split) else (_layout.child(root, ["CAER-S", "CAER_S"], kind="dir") or root)
    folder = _layout.split_dir(base, split)
    if folder is None:
        raise _layout.layout_error(NAME, f"no {split}/ folder in {root}", LAYOUT)
    info: dict[str, Any] = {"layout": "folder", "folder": str(folder)}
    order = _labels.DATASET_ORDERS[NAME]
    samples = _layout.scan_class_tree(folder, order, _labels.canonical, where=f"{NAME}/{split}", on_error=on_error,
                                      info=info)
    return FerDataset(samples, order, name=NAME, split=split, root=base, on_error=on_error, info=info)


register_dataset(DatasetSpec(
    name=NAME, builder=build_caer_s, splits=("train", "test"), aliases={"val": "test"}, layout=LAYOUT,
    description="CAER-S: train|test/<Anger..Surprise>/ class folders; 7 classes, alphabetical order",
    official_sizes={"train": 44996, "test": 20987}))
