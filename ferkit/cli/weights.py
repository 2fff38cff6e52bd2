"""``ferkit weights``: list, download, import, verify and locate weight files.

Exit codes: 0 success; 1 something was not done (a download failed, a cached file is bad, ``path`` of a file that is
not cached); 2 usage errors (unknown name, hash mismatch on import, offline mode, ...).
"""

from __future__ import annotations

import argparse
import sys

from ferkit.cli._common import add_allow_unverified_arg, print_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("weights", help="list, download, import and verify weight files",
                       description="Manage the weights cache ($FERKIT_HOME/weights, default ~/.cache/ferkit/weights). "
                                   "FERKIT_OFFLINE=1 forbids any network access.")
    p.add_argument("--cache-dir", default=None, help="cache root (default: $FERKIT_HOME or ~/.cache/ferkit)")
    wsub = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    q = wsub.add_parser("list", help="known weights: kind, size, checksum, cached?, licence")
    q.add_argument("--json", action="store_true")
    q.add_argument("--kind", choices=("detector", "backbone", "checkpoint"), default=None)

    q = wsub.add_parser("download", help="download (and verify) weights into the cache")
    q.add_argument("names", nargs="*", metavar="NAME")
    q.add_argument("--all", action="store_true", help="every known asset (unverifiable ones need --allow-unverified)")
    add_allow_unverified_arg(q, help="accept assets without a published SHA-256 (the computed hash is recorded and "
                                     "printed)")
    q.add_argument("--url", default=None, help="download from this URL instead (one NAME only)")
    q.add_argument("--no-progress", action="store_true")

    q = wsub.add_parser("import", help="copy a local file into the cache after checking its SHA-256")
    q.add_argument("path")
    q.add_argument("--name", default=None, help="asset name (default: identified by the file's SHA-256)")
    add_allow_unverified_arg(q, help="accept a file for an asset without a published hash")

    q = wsub.add_parser("verify", help="re-hash every cached file")
    q.add_argument("--json", action="store_true")

    q = wsub.add_parser("path", help="print the cached file's path (exit 1 if it is not cached)")
    q.add_argument("name")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    actions = {"list": _list, "download": _download, "import": _import, "verify": _verify, "path": _path}
    return actions[args.action](args)


def _list(args: argparse.Namespace) -> int:
    from ferkit.hub import ASSETS, cached_status, list_assets

    rows = []
    for name in list_assets(kind=args.kind):
        a = ASSETS[name]
        rows.append({"name": name, "kind": a.kind, "filename": a.filename, "size": a.size, "sha256": a.sha256,
                     "sha256_known": a.verifiable, "cached": cached_status(name, args.cache_dir),
                     "licence": a.licence, "urls": list(a.urls), "origin_url": a.origin_url,
                     "description": a.description, "notes": a.notes})
    if args.json:
        print_json(rows)
        return 0
    print(f"{'name':22s} {'kind':10s} {'size':>11s} {'sha256':8s} {'cached':10s} licence")
    for r in rows:
        size = f"{r['size']:,}" if r["size"] else "?"
        print(f"{r['name']:22s} {r['kind']:10s} {size:>11s} {'known' if r['sha256_known'] else 'UNKNOWN':8s} "
              f"{r['cached']:10s} {r['licence']}")
    return 0


def _download(args: argparse.Namespace) -> int:
    from ferkit.errors import WeightsError
    from ferkit.hub import ASSETS, download

    names = list(ASSETS) if args.all else args.names
    if not names:
        raise ValueError("give asset names or --all (see `ferkit weights list`)")
    if args.url and len(names) != 1:
        raise ValueError("--url needs exactly one NAME")
    failed = 0
    for name in names:
        if args.all and not ASSETS[name].verifiable and not args.allow_unverified:
            print(f"skipped {name}: no published SHA-256 (add --allow-unverified to download it anyway)")
            continue
        try:
            path = download(name, cache_dir=args.cache_dir, url=args.url, progress=not args.no_progress,
                            allow_unverified=args.allow_unverified)
        except WeightsError as e:
            if not args.all and len(names) == 1:
                raise
            print(f"FAILED {name}: {e}", file=sys.stderr)
            failed += 1
            continue
        print(f"ok {name}: {path}")
    return 1 if failed else 0


def _import(args: argparse.Namespace) -> int:
    from ferkit.hub import import_weights
    from ferkit.hub.cache import read_record

    path = import_weights(args.path, args.name, cache_dir=args.cache_dir, allow_unverified=args.allow_unverified)
    rec = read_record(path) or {}
    state = "verified" if rec.get("verified") else "UNVERIFIED (no published hash; recorded)"
    print(f"imported {rec.get('asset')} ({state}) sha256={rec.get('sha256')} -> {path}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from ferkit.hub import verify_cache

    rows = [r for r in verify_cache(args.cache_dir) if r["status"] != "missing"]
    if args.json:
        print_json(rows)
    else:
        for r in rows:
            print(f"{r['status']:10s} {r['name']:22s} {r['path']}")
        if not rows:
            print("no weights cached")
    return 0 if all(r["status"] in ("ok", "unverified") for r in rows) else 1


def _path(args: argparse.Namespace) -> int:
    from ferkit.hub import cached_path, cached_status, get_asset
    from ferkit.hub.cache import validate_cached

    asset = get_asset(args.name)
    path = cached_path(asset, args.cache_dir)
    if not validate_cached(asset, path):
        print(f"{args.name} is {cached_status(asset, args.cache_dir)} in {path.parent}", file=sys.stderr)
        return 1
    print(path)
    return 0
