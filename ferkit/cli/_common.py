"""Helpers shared by sub-commands."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """``["a=1", "b.c=[2,3]"]`` -> ``{"a": 1, "b.c": [2, 3]}``; values parsed as YAML scalars/lists."""
    import yaml

    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise ValueError(f"override {item!r} must look like key=value")
        key, value = item.split("=", 1)
        out[key.strip()] = yaml.safe_load(value) if value.strip() else ""
    return out


def add_model_args(p: argparse.ArgumentParser, *, checkpoint: bool = True) -> None:
    p.add_argument("--set", dest="overrides", action="append", metavar="KEY=VALUE", default=[],
                   help="model config override, repeatable (e.g. --set vit_depth=4)")
    p.add_argument("--num-classes", type=int, default=None, help="class count (default: from the checkpoint, else 7)")
    if checkpoint:
        p.add_argument("--checkpoint", default=None, help="official or ferkit checkpoint to load")
        p.add_argument("--trust-checkpoint", action="store_true",
                       help="allow full unpickling of a legacy checkpoint with Python objects (only for trusted files)")


def print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, indent=2)
    sys.stdout.write("\n")


def check_output_dir(path: str | os.PathLike | None, option: str) -> None:
    """Fail early, with one clear line, when output folder ``path`` (given as ``option``) is or lies under a file.

    Raises:
        ValueError: naming the file that is in the way.
    """
    if path is None:
        return
    blocker = _file_in_the_way(Path(path))
    if blocker is not None:
        raise ValueError(f"{option} {path}: {blocker} is a file, not a folder; choose another output folder")


def check_output_file(path: str | os.PathLike | None, option: str) -> None:
    """Fail early when output file ``path`` (``-`` = stdout) is an existing folder or lies under a file.

    Raises:
        ValueError: naming the folder or file that is in the way.
    """
    if path is None or str(path) == "-":
        return
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{option} {path}: is a folder; expected a file name")
    blocker = _file_in_the_way(path.parent)
    if blocker is not None:
        raise ValueError(f"{option} {path}: {blocker} is a file, not a folder; choose another output path")


def _file_in_the_way(folder: Path) -> Path | None:
    """The nearest existing ``folder`` or parent of it when that is not a folder (so ``mkdir`` would fail)."""
    for p in (folder, *folder.parents):
        if p.exists():
            return None if p.is_dir() else p
    return None
