"""Validate a data-set copy: layout, images per class and split, unreadable or missing files, exact duplicates."""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from pathlib import Path
from typing import Any

from torch.utils.data import DataLoader, Dataset

from ferkit.data.dataset import FerDataset
from ferkit.data.registry import build_dataset, get_spec
from ferkit.errors import DatasetError

logger = logging.getLogger(__name__)

_PROBLEM_KEYS = ("invalid_rows", "skipped_folders", "empty_classes")


class _Probe(Dataset):
    """Decodes samples and returns ``(index, pixel digest or "", error or "")`` so errors never stop the scan."""

    def __init__(self, ds: FerDataset):
        self.ds = ds

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int) -> tuple[int, str, str]:
        try:
            image = self.ds.read(i)
        except DatasetError as e:
            return i, "", str(e)
        digest = hashlib.blake2b(f"{image.size}".encode() + image.tobytes(), digest_size=16).hexdigest()
        return i, digest, ""


def _scan(ds: FerDataset, workers: int) -> list[tuple[int, str, str]]:
    loader = DataLoader(_Probe(ds), batch_size=256, num_workers=workers, collate_fn=list)
    return [item for batch in loader for item in batch]


def check_dataset(name: str, root: str | Path, *, split: str | None = None, decode: bool = True, workers: int = 0,
                  max_listed: int = 20, **options: Any) -> dict[str, Any]:
    """Check every split of data set ``name`` at ``root`` (or only ``split``).

    Args:
        decode: decode every image (finds corrupt files and pixel-identical duplicates); ``False`` only counts.
        workers: DataLoader worker processes for decoding.
        max_listed: at most this many entries per list (missing, unreadable, duplicate groups) in the report.
        **options: loader options, e.g. ``label_rule="majority"``.

    Returns:
        ``{"name", "root", "ok", "label_names", "splits": {split: {class: count}}, "totals", "missing",
        "unreadable", "problems", "duplicates", ...}``; ``ok`` is false when the layout is wrong (``"error"`` and
        ``"expected_layout"`` say why) or files are missing, unreadable or badly labelled. Duplicates are reported,
        not failed.
    """
    spec = get_spec(name)
    splits = [spec.resolve_split(split)] if split else list(spec.splits)
    spec.check_options(options)
    report: dict[str, Any] = {"name": spec.name, "root": str(root), "ok": True, "splits": {}, "totals": {},
                              "absent_splits": {}, "dropped": {}, "missing": [], "unreadable": [], "problems": [],
                              "ignored_files": 0}
    if spec.official_sizes:
        report["official_sizes"] = dict(spec.official_sizes)
    built: dict[str, FerDataset] = {}
    for s in splits:
        if any(ds.info.get("whole_table") for ds in built.values()):
            report["absent_splits"][s] = "the table has no split column; all its rows are reported once"
            continue
        try:
            built[s] = build_dataset(spec.name, root, s, on_error="skip", **options)
        except DatasetError as e:
            if split is None and s in spec.optional_splits:
                report["absent_splits"][s] = str(e).split("\n")[0]
                continue
            return _invalid(report, spec, e)
    if not built:
        return _invalid(report, spec, DatasetError(f"{spec.name}: no split found in {root}"))
    for s, ds in built.items():
        _add_split(report, s, ds)
    if decode:
        _decode_all(report, built, workers)
    report["ok"] = not (report["missing"] or report["unreadable"] or report["problems"])
    for key in ("missing", "unreadable", "problems"):
        report[f"num_{key}"] = len(report[key])
        report[key] = report[key][:max_listed]
    if "duplicates" in report:
        report["duplicates"] = report["duplicates"][:max_listed]
    return report


def _invalid(report: dict[str, Any], spec, error: Exception) -> dict[str, Any]:
    message = str(error)
    report.update(ok=False, error=message.split("\nexpected layout:")[0], expected_layout=spec.layout)
    return report


def _add_split(report: dict[str, Any], split: str, ds: FerDataset) -> None:
    report.setdefault("label_names", list(ds.label_names))
    report.setdefault("layout", ds.info.get("layout"))
    report["splits"][split] = ds.class_counts()
    report["totals"][split] = len(ds)
    if ds.info.get("dropped"):
        report["dropped"][split] = ds.info["dropped"]
    report["missing"] += ds.info.get("missing", [])
    report["ignored_files"] += ds.info.get("ignored_files", 0)
    for key in _PROBLEM_KEYS:
        report["problems"] += ds.info.get(key, [])


def _decode_all(report: dict[str, Any], built: dict[str, FerDataset], workers: int) -> None:
    groups: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    for split, ds in built.items():
        for i, digest, error in _scan(ds, workers):
            if error:
                report["unreadable"].append({"file": ds.samples[i][0], "error": error})
            else:
                groups[digest].append((split, ds.samples[i][0], ds.label_names[ds.targets[i]]))
    dups = [g for g in groups.values() if len(g) > 1]
    dups.sort(key=lambda g: (-len({lab for _, _, lab in g}), -len(g), g[0][1]))
    report["duplicates"] = [{"files": [f for _, f, _ in g], "labels": [lab for _, _, lab in g],
                             "splits": [s for s, _, _ in g]} for g in dups]
    report["duplicate_groups"] = len(dups)
    report["duplicate_files"] = sum(len(g) for g in dups)
    report["duplicate_label_conflicts"] = sum(1 for g in dups if len({lab for _, _, lab in g}) > 1)
    report["duplicate_cross_split"] = sum(1 for g in dups if len({s for s, _, _ in g}) > 1)
