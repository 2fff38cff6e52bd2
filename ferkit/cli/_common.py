"""Helpers shared by sub-commands."""

from __future__ import annotations

import argparse
import json
import sys
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
