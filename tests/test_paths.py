"""``ferkit.paths``: the one place that reads ``$FERKIT_HOME``; the weights cache, MPA-FER's prototype cache, the LLM
answer cache and data-set joins all live under it."""

from __future__ import annotations

import os
from pathlib import Path

import ferkit.hub
from ferkit.paths import cache_dir, cache_subdir


def test_root_from_argument_env_xdg_or_home(monkeypatch, tmp_path):
    monkeypatch.setenv("FERKIT_HOME", str(tmp_path / "fh"))
    assert cache_dir() == tmp_path / "fh" and cache_dir(tmp_path / "arg") == tmp_path / "arg"
    monkeypatch.delenv("FERKIT_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "ferkit"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_dir() == Path(os.path.expanduser("~")) / ".cache" / "ferkit"


def test_every_cache_follows_ferkit_home(monkeypatch, tmp_path):
    from ferkit.models.mpa_fer.model import _default_cache_dir

    monkeypatch.setenv("FERKIT_HOME", str(tmp_path))
    assert ferkit.hub.cache_dir is cache_dir  # the public hub name is the same function, not a second lookup
    assert ferkit.hub.weights_dir() == tmp_path / "weights"
    assert Path(_default_cache_dir()) == tmp_path / "cache" / "prototypes" == cache_subdir("cache", "prototypes")
    assert cache_subdir("data", root=tmp_path / "r") == tmp_path / "r" / "data"
