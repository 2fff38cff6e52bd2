"""Where the ``../shared`` folder (real data sets and third-party weights, not in the repository) is.

``FERKIT_SHARED`` overrides it; otherwise ``../shared`` beside the checkout (or beside a git worktree's parent).
Tests that need it skip when it is absent (see the ``fer2013_root`` / ``shared_weights`` fixtures in conftest.py).
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
_CANDIDATES = [REPO.parent / "shared", REPO.parent.parent / "shared"]  # ../shared (also from a git worktree)
SHARED = Path(os.environ.get("FERKIT_SHARED") or next((p for p in _CANDIDATES if p.is_dir()), _CANDIDATES[0]))
FER2013 = SHARED / "data" / "fer2013"
FERPLUS = SHARED / "data" / "ferplus"
SHARED_WEIGHTS = SHARED / "weights"
