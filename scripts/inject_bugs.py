#!/usr/bin/env python
"""Re-inject the plausible bugs of issue 14, one at a time, into a scratch copy of the repository and run the tests
that should catch each (``pytest -x``). Prints CAUGHT / NOT CAUGHT and the first failing test.

    python scripts/inject_bugs.py            # all of them (a few minutes on 2 cores)
    python scripts/inject_bugs.py 3 7        # only bugs 3 and 7 (numbers as printed)
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MPA = ["tests/mpa_fer/test_mpa_oracles.py", "tests/mpa_fer/test_mpa_losses.py"]
POSTER = ["tests/test_poster_v2.py", "tests/test_poster_v2_oracles.py"]
TANH = 'act_layer=lambda: nn.GELU(approximate="tanh")'

#: (what, file, text, replacement, tests)
BUGS = [
    ("MPA-FER: top-k local term dropped from the logits", "ferkit/models/mpa_fer/model.py",
     "sim = sim + losses.topk_local_similarity(", "sim = sim + 0 * losses.topk_local_similarity(", MPA),
    ("MPA-FER: L_pa dropped from the loss", "ferkit/models/mpa_fer/model.py",
     'total = total + cfg.beta * (parts["ta"] + parts["pa"])', 'total = total + cfg.beta * parts["ta"]', MPA),
    ("MPA-FER: L_v times zero", "ferkit/models/mpa_fer/model.py",
     'total = total + cfg.gamma * parts["v"]', 'total = total + 0 * cfg.gamma * parts["v"]', MPA),
    ("MPA-FER: L_ta anchor flipped", "ferkit/models/mpa_fer/losses.py",
     "    return alignment_ce(sim, tau, direction)", "    return alignment_ce(sim.t(), tau, direction)", MPA),
    ('MPA-FER: local_feat="value" from the last block\'s output', "ferkit/models/mpa_fer/encoders.py",
     "value_path(blocks[-1], last_in[:, 1:n])", "value_path(blocks[-1], x[:, 1:n])", MPA),
    ('MPA-FER: vp_first="before_ln_pre" drops layer-1 prompts', "ferkit/models/mpa_fer/encoders.py",
     "x = visual.ln_pre(torch.cat([x, prompts[0].to(x.dtype).expand(batch, -1, -1)], dim=1))",
     "x = visual.ln_pre(x)", MPA),
    ("POSTER++: ViT LayerNorm eps 1e-5", "ferkit/models/poster_v2/vit.py",
     "        self.norm = nn.LayerNorm(dim, eps=1e-6)", "        self.norm = nn.LayerNorm(dim, eps=1e-5)", POSTER),
    ("POSTER++: tanh-GELU in the ViT", "ferkit/models/poster_v2/vit.py",
     "self.mlp = Mlp(dim, int(dim * mlp_ratio))", f"self.mlp = Mlp(dim, int(dim * mlp_ratio), {TANH})", POSTER),
    ("POSTER++: tanh-GELU in the fusion MLP", "ferkit/models/poster_v2/fusion.py",
     "self.mlp = Mlp(dim, 4 * dim)", f"self.mlp = Mlp(dim, 4 * dim, {TANH})", POSTER),
    ("POSTER++: vanilla attention built as the full model", "ferkit/models/poster_v2/model.py",
     'vanilla = cfg.attention == "vanilla"', "vanilla = False", POSTER),
]


def run(number: int, what: str, rel: str, old: str, new: str, tests: list[str]) -> bool:
    with tempfile.TemporaryDirectory(prefix="ferkit-inject-") as tmp:
        work = Path(tmp)
        shutil.copytree(REPO / "ferkit", work / "ferkit", ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copytree(REPO / "tests", work / "tests", ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy(REPO / "pyproject.toml", work)
        src = (work / rel).read_text()
        if src.count(old) != 1:
            raise SystemExit(f"bug {number}: the text to change occurs {src.count(old)} times in {rel} (code moved?)")
        (work / rel).write_text(src.replace(old, new))
        r = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:xdist", "-p", "no:cacheprovider",
                            *tests], cwd=work, capture_output=True, text=True)
    failed = [line for line in r.stdout.splitlines() if line.startswith("FAILED")]
    print(f"{number:2d} {'CAUGHT    ' if r.returncode else 'NOT CAUGHT'} {what}")
    if failed:
        print("     ", failed[0].split(" - ")[0].removeprefix("FAILED "))
    return r.returncode != 0


def main() -> int:
    chosen = {int(a) for a in sys.argv[1:]} or set(range(1, len(BUGS) + 1))
    caught = [run(i, *bug) for i, bug in enumerate(BUGS, 1) if i in chosen]
    print(f"{sum(caught)} of {len(caught)} caught")
    return 0 if all(caught) else 1


if __name__ == "__main__":
    sys.exit(main())
