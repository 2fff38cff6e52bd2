"""``ferkit models``: list registered models."""

from __future__ import annotations

import argparse

from ferkit.cli._common import print_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list registered models (--pretrained: trained weights)",
                       description="List registered model names, or with --pretrained the trained weights "
                                   "(arch.tag) that `ferkit predict --model` accepts.")
    p.add_argument("pattern", nargs="?", default=None, help="shell-style filter, e.g. 'poster*'")
    p.add_argument("--pretrained", action="store_true", help="list pretrained weights instead (* = the default)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.pretrained:
        return _pretrained(args)
    from ferkit.models import get_entry, list_models

    rows = [{"name": n, "family": get_entry(n).family, "description": get_entry(n).description,
             "defaults": get_entry(n).defaults} for n in list_models(args.pattern)]
    if args.json:
        print_json(rows)
    else:
        for r in rows:
            print(f"{r['name']:28s} {r['description']}")
    return 0


def _pretrained(args: argparse.Namespace) -> int:
    from ferkit.models.pretrained import DEFAULT_MODEL, get_pretrained_cfg, list_pretrained

    rows = [get_pretrained_cfg(n).to_dict() | {"default": n == DEFAULT_MODEL} for n in list_pretrained(args.pattern)]
    if args.json:
        print_json(rows)
        return 0
    for r in rows:
        where = "shipped" if r["packaged"] else f"asset {r['asset']}"
        metrics = ", ".join(f"{k} {v:g}" for k, v in r["metrics"].items())
        print(f"{'*' if r['default'] else ' '} {r['name']:24s} {r['num_classes']} classes  {r['dataset']:22s} "
              f"{where:28s} {metrics}")
    return 0
