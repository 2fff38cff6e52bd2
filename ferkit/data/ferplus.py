"""FERPlus (Barsoum et al. 2016): FER2013 images relabelled by 10 annotators each.

``fer2013new.csv`` holds one row per row of ``fer2013.csv`` (joined by position): ``Usage, Image name`` and 10 vote
counts ``neutral, happiness, surprise, sadness, anger, disgust, fear, contempt, unknown, NF``. Targets follow that
column order (``labels.DATASET_ORDERS["ferplus"]``). Two rules turn votes into one label:

- ``argmax`` (default): the column with most votes over all 10 (first on ties); rows won by unknown/NF are dropped.
  Real data: 28,389 train / 3,553 val / 3,546 test.
- ``majority`` (Microsoft's ``majority`` mode): single votes are discarded, the winner needs more than half of the
  remaining votes, rows won by unknown/NF are dropped. Real data: 25,060 / 3,199 / 3,153.

Rows without an image name (173 in the release) are dropped. Splits: ``train`` = Training, ``val`` = PublicTest,
``test`` = PrivateTest. ``dataset.votes[i]`` keeps sample ``i``'s 10 vote counts (for soft-label training).
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ferkit import labels as _labels
from ferkit.data import _layout
from ferkit.data._pixels import USAGE_NAMES, USAGE_SPLITS, PixelDataset, header, parse_pixels, read_rows
from ferkit.data.dataset import FerDataset
from ferkit.data.registry import DatasetSpec, register_dataset
from ferkit.errors import DatasetError

logger = logging.getLogger(__name__)

NAME = "ferplus"
VOTE_COLUMNS = _labels.NATIVE_NAMES["ferplus"]
LABEL_RULES = ("argmax", "majority")
LAYOUT = """\
CSV form (Microsoft's fer2013new.csv next to the Kaggle fer2013.csv, joined row by row):
  ROOT/fer2013.csv        emotion,pixels,Usage (also ROOT/fer2013/fer2013.csv)
  ROOT/fer2013new.csv     Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF
image-folder form (written by FERPlus' generate_training_data.py):
  ROOT/FER2013Train/label.csv + fer0000000.png ...   label.csv rows: image name[,face box],10 vote counts
  ROOT/FER2013Valid/...   ROOT/FER2013Test/...
splits: train = Training (FER2013Train), val = PublicTest (FER2013Valid), test = PrivateTest (FER2013Test)
"""
_FOLDERS = {"train": "FER2013Train", "val": "FER2013Valid", "test": "FER2013Test"}


class FerPlusPixels(PixelDataset):
    """FERPlus from the CSV pair: in-memory pixels plus ``votes`` (10 counts per sample)."""

    per_sample = ("pixels", "votes")


class FerPlusFiles(FerDataset):
    """FERPlus from the generated image folders, plus ``votes`` (10 counts per sample)."""

    per_sample = ("votes",)


def vote_label(votes: Sequence[int], rule: str = "argmax") -> int | None:
    """Index into :data:`VOTE_COLUMNS` of the label the 10 ``votes`` give under ``rule``; ``None`` drops the row
    (no votes, no majority, or won by unknown/NF)."""
    if len(votes) != len(VOTE_COLUMNS):
        raise ValueError(f"expected {len(VOTE_COLUMNS)} vote counts, got {len(votes)}")
    if rule == "majority":
        votes = [v if v > 1 else 0 for v in votes]  # single votes are outliers
    total, top = sum(votes), max(votes)
    if total <= 0 or (rule == "majority" and not top > 0.5 * total):
        return None
    winner = list(votes).index(top)  # first on ties
    return winner if winner < len(_labels.DATASET_ORDERS[NAME]) else None


def drop_reason(votes: Sequence[int], rule: str) -> str:
    if sum(votes) <= 0:
        return "no votes"
    if rule == "majority" and vote_label(votes, "argmax") is not None:
        return "no majority"
    return "won by unknown/NF"


def build_ferplus(root: Path, split: str, *, on_error: str = "raise", label_rule: str = "argmax",
                  layout: str = "auto", targets: str = "label", aux_fer2013_root: str | None = None) -> FerDataset:
    """FERPlus ``split`` with labels from the votes by ``label_rule`` (``"argmax"`` or ``"majority"``).

    Args:
        layout: ``"csv"`` (fer2013.csv + fer2013new.csv), ``"folder"`` (FER2013Train/... with label.csv) or ``"auto"``.
        targets: ``"label"`` (class index) or ``"votes"``: the 8 emotion vote shares as a soft target (unknown / NF
            votes left out), Barsoum et al.'s "probability" training.
        aux_fer2013_root: a FER2013 image-folder root; with ``targets="votes"`` each target gains 7 columns, the
            one-hot original FER2013 label (``labels.DATASET_ORDERS["fer2013"]`` order; all zero when the image has
            no pixel match), for a model's auxiliary head (:mod:`ferkit.data.fer_join`).
    """
    if label_rule not in LABEL_RULES:
        raise DatasetError(f"{NAME}: label_rule must be one of {LABEL_RULES}, got {label_rule!r}")
    if targets not in ("label", "votes"):
        raise DatasetError(f"{NAME}: targets must be 'label' or 'votes', got {targets!r}")
    if aux_fer2013_root and targets != "votes":
        raise DatasetError(f"{NAME}: aux_fer2013_root needs targets='votes' (the auxiliary label is extra columns)")
    ds = _build(root, split, label_rule, layout, on_error)
    if targets == "votes":
        n = len(ds.label_names)
        soft = [_vote_shares(v[:n]) for v in ds.votes]
        if aux_fer2013_root:
            soft = [a + b for a, b in zip(soft, _fer2013_onehots(ds, Path(aux_fer2013_root), split))]
        ds.set_soft_targets(soft)
    return ds


def _vote_shares(votes: Sequence[int]) -> tuple[float, ...]:
    total = sum(votes)
    return tuple(v / total for v in votes) if total else tuple(0.0 for _ in votes)


def _fer2013_onehots(ds: FerDataset, fer2013_root: Path, split: str) -> list[tuple[float, ...]]:
    from ferkit.data.fer2013 import build_fer2013
    from ferkit.data.fer_join import match_labels
    from ferkit.paths import cache_subdir

    if not all(Path(s).is_file() for s, _ in ds.samples[:1]):
        raise DatasetError(f"{NAME}: aux_fer2013_root needs the image-folder form of FERPlus (files to match)")
    ref = build_fer2013(fer2013_root, split, on_error="skip")
    k = len(_labels.DATASET_ORDERS["fer2013"])
    order = _labels.mapping(ref.label_names, _labels.DATASET_ORDERS["fer2013"], strict=True)
    found = match_labels([s for s, _ in ds.samples], [s for s, _ in ref.samples], ref.targets,
                         cache=cache_subdir("data"))
    missing = sum(f is None for f in found)
    if missing:
        logger.warning("%s/%s: %d images have no FER2013 twin; their auxiliary target is empty", NAME, split, missing)
    return [tuple(1.0 if f is not None and order[f] == i else 0.0 for i in range(k)) for f in found]


def _build(root: Path, split: str, label_rule: str, layout: str, on_error: str) -> FerDataset:
    if layout not in ("auto", "csv", "folder"):
        raise DatasetError(f"{NAME}: layout must be 'auto', 'csv' or 'folder', got {layout!r}")
    new_csv = _layout.find(root, ["fer2013new.csv", "fer2013/fer2013new.csv"])
    folder = _layout.child(root, [_FOLDERS[split]], kind="dir")
    if layout == "csv" or (layout == "auto" and new_csv is not None):
        old_csv = _layout.find(root, ["fer2013.csv", "fer2013/fer2013.csv"])
        if new_csv is None or old_csv is None:
            raise _layout.layout_error(NAME, f"the CSV form needs both fer2013.csv and fer2013new.csv in {root}",
                                       LAYOUT)
        return _from_csv(root, old_csv, new_csv, split, label_rule, on_error=on_error)
    if folder is None:
        raise _layout.layout_error(NAME, f"found neither fer2013new.csv nor {_FOLDERS[split]}/ in {root}", LAYOUT)
    return _from_folder(root, folder, split, label_rule, on_error=on_error)


def _parse_votes(values: Sequence[str]) -> list[int]:
    votes = [_layout.parse_int(v, "vote count") for v in values]
    if len(votes) != len(VOTE_COLUMNS) or min(votes) < 0:
        raise ValueError(f"expected {len(VOTE_COLUMNS)} non-negative vote counts, got {list(values)}")
    return votes


def _count(info: dict[str, Any], reason: str) -> None:
    info["dropped"][reason] = info["dropped"].get(reason, 0) + 1


def _from_csv(root: Path, old_csv: Path, new_csv: Path, split: str, rule: str, *, on_error: str) -> FerDataset:
    cols = header(new_csv)
    wanted = ["usage", "image name"] + [c.lower() for c in VOTE_COLUMNS]
    if [c for c in wanted if c not in cols]:
        raise _layout.layout_error(NAME, f"{new_csv} header is {cols}; expected {wanted}", LAYOUT)
    votes_rows = list(read_rows(new_csv))
    info: dict[str, Any] = {"layout": "csv", "csv": str(old_csv), "votes_csv": str(new_csv), "label_rule": rule,
                            "dropped": {}}
    samples, pixels, votes_kept = [], [], []
    rows = 0
    for i, (line, row) in enumerate(read_rows(old_csv)):
        rows += 1
        if i >= len(votes_rows):
            raise DatasetError(f"{NAME}: {old_csv} has more rows than {new_csv} ({len(votes_rows)}); the files must "
                               "list the same images in the same order")
        vline, vrow = votes_rows[i]
        usage = vrow.get("usage", "").strip()
        if usage.lower() != row.get("usage", "").strip().lower():
            raise DatasetError(f"{NAME}: row {i + 1} has Usage {row.get('usage')!r} in {old_csv} but {usage!r} in "
                               f"{new_csv}: the files are not aligned")
        if USAGE_SPLITS.get(usage.lower()) != split:
            continue
        name = vrow.get("image name", "").strip()
        if not name:
            _count(info, "no image name")
            continue
        try:
            votes = _parse_votes([vrow[c.lower()] for c in VOTE_COLUMNS])
            image = parse_pixels(row["pixels"])
        except ValueError as e:
            _layout.report_problem(on_error, info, "invalid_rows",
                                   f"{new_csv}:line {vline} / {old_csv}:line {line}: {e}")
            continue
        label = vote_label(votes, rule)
        if label is None:
            _count(info, drop_reason(votes, rule))
            continue
        samples.append((f"{old_csv}:line {line} ({name})", label))
        pixels.append(image)
        votes_kept.append(tuple(votes))
    if len(votes_rows) != rows:
        raise DatasetError(f"{NAME}: {new_csv} has more rows than {old_csv}; the files must be aligned")
    _check_nonempty(samples, split)
    ds = FerPlusPixels(samples, _labels.DATASET_ORDERS[NAME], pixels, name=NAME, split=split, root=root,
                       on_error=on_error, info=info)
    ds.votes = votes_kept
    _log_counts(ds)
    return ds


def _from_folder(root: Path, folder: Path, split: str, rule: str, *, on_error: str) -> FerDataset:
    table = folder / "label.csv"
    if not table.is_file():
        raise _layout.layout_error(NAME, f"{folder} has no label.csv", LAYOUT)
    info: dict[str, Any] = {"layout": "folder", "folder": str(folder), "label_rule": rule, "dropped": {}}
    samples, votes_kept = [], []
    with open(table, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        for row in reader:
            if not row or not row[0].strip():
                continue
            try:
                votes = _parse_votes(row[-len(VOTE_COLUMNS):] if len(row) in (11, 12) else row)
            except ValueError as e:
                _layout.report_problem(on_error, info, "invalid_rows", f"{table}:line {reader.line_num}: {e}")
                continue
            label = vote_label(votes, rule)
            if label is None:
                _count(info, drop_reason(votes, rule))
                continue
            samples.append((str(folder / row[0].strip()), label))
            votes_kept.append(tuple(votes))
    keep = _layout.drop_missing(samples, where=f"{NAME}/{split}", on_error=on_error, info=info)
    samples, votes_kept = [samples[i] for i in keep], [votes_kept[i] for i in keep]
    _check_nonempty(samples, split)
    ds = FerPlusFiles(samples, _labels.DATASET_ORDERS[NAME], name=NAME, split=split, root=root, on_error=on_error,
                      info=info)
    ds.votes = votes_kept
    _log_counts(ds)
    return ds


def _check_nonempty(samples: list, split: str) -> None:
    if not samples:
        raise DatasetError(f"{NAME}: no usable {USAGE_NAMES[split]} rows (the {split} split)")


def _log_counts(ds: FerDataset) -> None:
    logger.info("%s/%s (%s rule): %d samples; dropped %s", NAME, ds.split, ds.info["label_rule"], len(ds),
                ds.info["dropped"] or "nothing")


register_dataset(DatasetSpec(
    name=NAME, builder=build_ferplus, splits=("train", "val", "test"), layout=LAYOUT, optional_splits=("val", "test"),
    description="FERPlus: fer2013.csv + fer2013new.csv votes (or FER2013Train/...); label_rule argmax | majority",
    official_sizes={"argmax": {"train": 28389, "val": 3553, "test": 3546},
                    "majority": {"train": 25060, "val": 3199, "test": 3153}}))
