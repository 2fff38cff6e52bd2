"""The CI guard of tests/conftest.py: with CI=true a skipped ``required_in_ci`` test fails; skips are summarised."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent

CASES = '''
import pytest

@pytest.mark.required_in_ci
def test_required():
    pytest.skip("needs a thing")

def test_optional():
    pytest.skip("needs ../shared data")

@pytest.mark.required_in_ci
def test_required_runs():
    pass
'''


def _run(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess:
    shutil.copy(HERE / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_cases.py").write_text(CASES)
    env = {k: v for k, v in os.environ.items() if k != "CI"} | ({"CI": ci} if ci else {})
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE.parent), env.get("PYTHONPATH")]))  # for tests._shared
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:xdist", "-p", "no:cacheprovider", "-q", "-ra",
                           "-c", os.devnull, "--rootdir", str(tmp_path), str(tmp_path)],
                          env=env, capture_output=True, text=True, cwd=tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("ci", [None, "true"])
def test_required_skip_fails_only_in_ci(tmp_path: Path, ci: str | None) -> None:
    r = _run(tmp_path, ci)
    assert "skipped test(s) by reason" in r.stdout and "needs ../shared data" in r.stdout
    if ci:
        assert r.returncode == 1 and _counts(r.stdout) == {"failed": 1, "passed": 1, "skipped": 1}
        assert "required in CI but skipped: needs a thing" in r.stdout  # the shared-data test may still skip
    else:
        assert r.returncode == 0 and _counts(r.stdout) == {"passed": 1, "skipped": 2}


def _counts(stdout: str) -> dict[str, int]:
    """pytest's final line, e.g. ``1 failed, 1 passed, 1 skipped in 0.5s`` -> {"failed": 1, ...} (any order)."""
    last = stdout.strip().splitlines()[-1]
    return {word: int(n) for n, word in re.findall(r"(\d+) (failed|passed|skipped|error)", last)}
