"""``ferkit data list`` and ``ferkit data check NAME ROOT``: registered data sets and layout validation."""

from __future__ import annotations

import argparse
import os
from collections import Counter
from typing import Any

from ferkit.cli._common import parse_overrides, print_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="data sets: list loaders, check a copy",
                       description="Data-set tools. `ferkit data list` names the loaders; `ferkit data check NAME "
                                   "ROOT` validates a copy (layout, images per class and split, unreadable or missing "
                                   "files, exact duplicates).")
    cmds = p.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    ls = cmds.add_parser("list", help="registered data-set names and their splits")
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.set_defaults(func=run_list)
    ck = cmds.add_parser("check", help="validate a data-set copy",
                         description="Validate a data-set copy. Exit code 0: valid; 1: wrong layout, or missing, "
                                     "unreadable or badly labelled files (duplicates are reported, not failed).")
    ck.add_argument("name", help="data-set name (see `ferkit data list`)")
    ck.add_argument("root", help="data-set root folder (or CSV file)")
    ck.add_argument("--split", default=None, help="check only this split (default: every split)")
    ck.add_argument("--option", "-o", dest="options", action="append", metavar="KEY=VALUE", default=[],
                    help="loader option, repeatable (e.g. -o label_rule=majority for ferplus)")
    ck.add_argument("--no-decode", dest="decode", action="store_false",
                    help="only count files (skip decoding: no corrupt-file or duplicate search)")
    ck.add_argument("--workers", type=int, default=2, help="decoding worker processes (default 2; 0 = in-process)")
    ck.add_argument("--max-listed", type=int, default=20, help="longest list of files shown per problem kind")
    ck.add_argument("--json", action="store_true", help="print the full report as JSON")
    ck.set_defaults(func=run_check)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def run_list(args: argparse.Namespace) -> int:
    from ferkit.data import get_spec, list_datasets

    rows = []
    for name in list_datasets():
        spec = get_spec(name)
        rows.append({"name": name, "splits": list(spec.splits), "aliases": dict(spec.aliases),
                     "options": list(spec.options) + ["label_names"], "description": spec.description})
    if args.json:
        print_json(rows)
        return 0
    for r in rows:
        splits = ", ".join(r["splits"] + [f"{a}={t}" for a, t in r["aliases"].items()])
        print(f"{r['name']:11s} [{splits}]  {r['description']}")
    return 0


def run_check(args: argparse.Namespace) -> int:
    from ferkit.data.check import check_dataset

    report = check_dataset(args.name, args.root, split=args.split, decode=args.decode, workers=args.workers,
                           max_listed=args.max_listed, **parse_overrides(args.options))
    if args.json:
        print_json(report)
    else:
        print("\n".join(format_report(report)))
    return 0 if report["ok"] else 1


def format_report(r: dict[str, Any]) -> list[str]:
    """Human-readable lines for a :func:`~ferkit.data.check.check_dataset` report."""
    if "error" in r:
        return [f"INVALID {r['name']} at {r['root']}: {r['error']}", "expected layout:", r["expected_layout"].rstrip()]
    out = [f"{r['name']} at {r['root']} (layout: {r.get('layout')})",
           f"label order: {', '.join(r['label_names'])}", ""]
    splits = list(r["splits"])
    out.append(f"{'class':12s}" + "".join(f"{s:>9s}" for s in splits))
    for name in r["label_names"]:
        out.append(f"{name:12s}" + "".join(f"{r['splits'][s][name]:>9,d}" for s in splits))
    out.append(f"{'total':12s}" + "".join(f"{r['totals'][s]:>9,d}" for s in splits))
    out.append("")
    if r.get("official_sizes"):
        out.append(f"published sizes: {r['official_sizes']}")
    for s, why in r["absent_splits"].items():
        out.append(f"split {s} absent ({why})")
    for s, dropped in r["dropped"].items():
        out.append(f"{s}: dropped {dropped}")
    if r["ignored_files"]:
        out.append(f"ignored {r['ignored_files']} non-image file(s) in class folders")
    out += _listed("missing files", r.get("num_missing", 0), r["missing"])
    out += _listed("unreadable files", r.get("num_unreadable", 0), [f"{u['file']}: {u['error']}"
                                                                  for u in r["unreadable"]])
    out += _listed("label and layout problems", r.get("num_problems", 0), r["problems"])
    if "duplicate_groups" in r:
        out.append(f"exact duplicates (identical pixels): {r['duplicate_groups']} groups, {r['duplicate_files']} "
                   f"files; {r['duplicate_label_conflicts']} groups with conflicting labels, "
                   f"{r['duplicate_cross_split']} spanning splits")
        for d in r["duplicates"][:5]:
            out.append("  " + _duplicate_line(d, r["root"]))
    out.append(_verdict(r))
    return out


#: Report counts that make a data-set copy fail, with the words the verdict uses for them.
_FAILURES = (("num_missing", "missing file"), ("num_unreadable", "unreadable file"),
            ("num_problems", "label or layout problem"))


def _verdict(r: dict[str, Any]) -> str:
    """``OK``, or ``PROBLEMS FOUND: <count> <kind>, ...`` naming exactly the failing kinds listed above it."""
    found = [f"{r[key]} {word}{'s' if r[key] != 1 else ''}" for key, word in _FAILURES if r.get(key)]
    if r["ok"] and not found:
        return "OK"
    return "PROBLEMS FOUND: " + (", ".join(found) or "see above")


def _duplicate_line(d: dict[str, list[str]], root: str) -> str:
    counts = Counter(d["labels"])
    labels = ", ".join(f"{n} x{c}" if c > 1 else n for n, c in counts.most_common())
    files = [os.path.relpath(f, root) if os.path.isabs(f) else f for f in d["files"]]
    more = f", ... (+{len(files) - 3})" if len(files) > 3 else ""
    return f"{len(files)} files [{labels}] in {'+'.join(sorted(set(d['splits'])))}: {', '.join(files[:3])}{more}"


def _listed(title: str, count: int, items: list[str]) -> list[str]:
    if not count:
        return [f"{title}: none"]
    lines = [f"{title}: {count}"] + [f"  {x}" for x in items]
    if count > len(items):
        lines.append(f"  ... and {count - len(items)} more (--max-listed, --json)")
    return lines
