"""``ferkit models``: list registered models."""

from __future__ import annotations

import argparse

from ferkit.cli._common import print_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list registered models", description="List registered model names.")
    p.add_argument("pattern", nargs="?", default=None, help="shell-style filter, e.g. 'poster*'")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ferkit.models import get_entry, list_models

    rows = [{"name": n, "family": get_entry(n).family, "description": get_entry(n).description,
             "defaults": get_entry(n).defaults} for n in list_models(args.pattern)]
    if args.json:
        print_json(rows)
    else:
        for r in rows:
            print(f"{r['name']:28s} {r['description']}")
    return 0
