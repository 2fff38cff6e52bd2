"""ferkit's folders on disk: one place that reads ``$FERKIT_HOME``.

The root is ``$FERKIT_HOME`` when set, else ``$XDG_CACHE_HOME/ferkit``, else ``~/.cache/ferkit``. Weight files live in
``<root>/weights`` (:mod:`ferkit.hub`), caches in ``<root>/cache/<name>`` (MPA-FER prototypes, LLM answers) and
``<root>/data`` (data-set joins).
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """ferkit's cache root: ``cache_dir`` if given, else ``$FERKIT_HOME``, else ``~/.cache/ferkit`` (under
    ``$XDG_CACHE_HOME`` when set). Weight files live in its ``weights/`` sub-folder."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    home = os.environ.get("FERKIT_HOME")
    if home:
        return Path(home).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "ferkit"


def cache_subdir(*parts: str, root: str | os.PathLike | None = None) -> Path:
    """A folder under the cache root, e.g. ``cache_subdir("cache", "prototypes")`` (not created here)."""
    return cache_dir(root).joinpath(*parts)
