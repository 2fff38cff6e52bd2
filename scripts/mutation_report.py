"""Summarise a mutmut 3 run (run from its work folder): per mutated file, counts per status and the score.

    python scripts/mutation_report.py [LABEL] [--survivors]

Score = (killed + timeout) / (mutants that have covering tests); "no tests" mutants are listed apart.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests", 34: "skipped", 36: "timeout",
          24: "timeout", -24: "timeout", 152: "timeout", 255: "timeout", None: "not checked", -11: "segfault",
          -9: "segfault"}


def summarise(root: Path) -> tuple[dict[str, Counter], list[str]]:
    """Status counts per source file and the names of the surviving mutants."""
    per_file: dict[str, Counter] = {}
    survivors: list[str] = []
    for meta in sorted(root.glob("mutants/**/*.py.meta")):
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        if not codes:
            continue
        name = str(meta.relative_to(root / "mutants"))[: -len(".meta")]
        per_file[name] = Counter(STATUS.get(c, "suspicious") for c in codes.values())
        survivors += [k for k, c in codes.items() if c == 0]
    return per_file, survivors


def score(c: Counter) -> tuple[int, int]:
    """(killed or timed out, mutants with tests)."""
    tested = sum(n for s, n in c.items() if s not in ("no tests", "not checked", "skipped"))
    return c["killed"] + c["timeout"], tested


def main(argv: list[str]) -> None:
    label = next((a for a in argv if not a.startswith("--")), "")
    per_file, survivors = summarise(Path.cwd())
    total: Counter = Counter()
    for name, c in per_file.items():
        total += c
        k, t = score(c)
        print(f"{label:10s} {name:48s} {k:4d}/{t:<4d} {100 * k / max(t, 1):5.1f} %  " +
              ", ".join(f"{s} {n}" for s, n in sorted(c.items())))
    k, t = score(total)
    print(f"{label:10s} {'TOTAL':48s} {k:4d}/{t:<4d} {100 * k / max(t, 1):5.1f} %  " +
          ", ".join(f"{s} {n}" for s, n in sorted(total.items())))
    if "--survivors" in argv:
        print("\n".join(survivors))


if __name__ == "__main__":
    main(sys.argv[1:])
