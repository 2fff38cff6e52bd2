"""Shared fixtures. Tests run on CPU with 2 threads; real-data tests skip when ../shared is absent.

In CI (``CI=true``) a test marked ``required_in_ci`` that skips fails instead (the skip reason is kept), and the
terminal summary lists the skips and their reasons; tests that need ``../shared`` data may still skip there.

Fixtures only: helpers and constants live in helper modules (``tests/_shared.py``, ``tests/_engine_helpers.py``, ...),
imported as ``from tests.<module> import ...`` (docs/testing.md, "Test helpers").
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from tests._shared import FER2013, SHARED_WEIGHTS

torch.set_num_threads(min(2, torch.get_num_threads()))


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "required_in_ci: must run in CI (CI=true): a skip there is a failure")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """With CI=true, turn the skip of a ``required_in_ci`` test into a failure that names the skip reason."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and in_ci() and item.get_closest_marker("required_in_ci") is not None:
        reason = _skip_reason(report)
        report.outcome = "failed"
        report.longrepr = f"required in CI but skipped: {reason}"


def _skip_reason(report: pytest.TestReport) -> str:
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    return reason.removeprefix("Skipped: ")


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    """Count the skips by reason (``-ra`` lists each one); in CI say that required tests cannot skip."""
    skipped = terminalreporter.stats.get("skipped", [])
    if not skipped:
        return
    reasons: dict[str, int] = {}
    for rep in skipped:
        reason = _skip_reason(rep)
        reasons[reason] = reasons.get(reason, 0) + 1
    terminalreporter.section(f"{len(skipped)} skipped test(s) by reason")
    for reason, n in sorted(reasons.items(), key=lambda r: -r[1]):
        terminalreporter.line(f"{n:4d}  {reason}")
    if in_ci():
        terminalreporter.line("CI=true: tests marked required_in_ci fail instead of skipping")


@pytest.fixture
def fer2013_root() -> Path:
    """The real FER2013 folder (train/<class>/*.jpg, val/<class>/*.jpg); skips when absent."""
    if not (FER2013 / "train").is_dir():
        pytest.skip(f"FER2013 not available at {FER2013}")
    return FER2013


@pytest.fixture
def shared_weights() -> Path:
    """Folder with real detector weights (YuNet, RetinaFace, MTCNN); skips when absent."""
    if not SHARED_WEIGHTS.is_dir():
        pytest.skip(f"shared weights not available at {SHARED_WEIGHTS}")
    return SHARED_WEIGHTS


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Never touch the user's cache: FERKIT_HOME points to a per-test temporary folder; no network by default."""
    monkeypatch.setenv("FERKIT_HOME", str(tmp_path_factory.mktemp("ferkit_home")))
    monkeypatch.setenv("FERKIT_OFFLINE", "1")
    torch.manual_seed(0)
