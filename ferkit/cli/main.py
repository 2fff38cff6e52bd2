"""``ferkit`` command: sub-commands mirror the Python API (``ferkit <command> --help``)."""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys

import ferkit
from ferkit.errors import FerkitError

#: Errors about paths the user gave (missing input, an output under a file, no permission): one line, exit code 2.
PATH_ERRORS = (FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError, PermissionError)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ferkit",
                                     description="Facial expression recognition toolkit (POSTER++, MPA-FER).")
    parser.add_argument("--version", action="version", version=f"ferkit {ferkit.__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    import ferkit.cli as pkg

    for mod in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if mod.name.startswith("_") or mod.name == "main":
            continue
        module = importlib.import_module(f"ferkit.cli.{mod.name}")
        if hasattr(module, "register"):
            module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    if list(sys.argv[1:] if argv is None else argv) == ["--version"]:  # answer without importing the commands
        print(f"ferkit {ferkit.__version__}")
        return 0
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("ferkit").setLevel(min(level, logging.INFO))
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (FerkitError, ValueError, *PATH_ERRORS) as e:
        print(f"ferkit {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `ferkit env | head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
