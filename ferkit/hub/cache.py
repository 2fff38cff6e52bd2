"""The weights cache: ``$FERKIT_HOME/weights/`` (default ``~/.cache/ferkit/weights/``).

Each cached file ``<filename>`` has a sidecar ``<filename>.json`` written after its SHA-256 was checked::

    {"asset", "filename", "sha256", "size", "verified", "source", "time", "mtime_ns"}

``verified`` is true when the hash equals the registry's; false for an asset without a published checksum that the
user accepted explicitly (the recorded hash then guards the file from later change). A file without a sidecar, or
whose size / mtime no longer match it, is re-hashed before use. Nothing unverified is ever written under its final
name: downloads and imports go through a temporary file that is renamed only after the check.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from ferkit.checkpoint import atomic_write_bytes, sha256_file
from ferkit.errors import WeightsError
from ferkit.hub.assets import Asset, get_asset
from ferkit.paths import cache_dir  # re-exported: ferkit.hub.cache_dir is public

log = logging.getLogger(__name__)

_TRUE = {"1", "true", "yes", "on"}


def weights_dir(cache: str | os.PathLike | None = None) -> Path:
    """Folder of cached weight files: ``cache_dir(cache) / "weights"``."""
    return cache_dir(cache) / "weights"


def is_offline(offline: bool | None = None) -> bool:
    """Offline mode: an explicit ``offline`` wins, else ``FERKIT_OFFLINE`` set to 1/true/yes/on."""
    if offline is not None:
        return bool(offline)
    return os.environ.get("FERKIT_OFFLINE", "").strip().lower() in _TRUE


def cached_path(name: str | Asset, cache: str | os.PathLike | None = None) -> Path:
    """Where the asset's file lives (or would live) in the cache."""
    return weights_dir(cache) / get_asset(name).filename


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def read_record(path: Path) -> dict[str, Any] | None:
    """The sidecar record of a cached file, or None when absent or unreadable."""
    try:
        return json.loads(_sidecar(path).read_text())
    except (OSError, ValueError):
        return None


def write_record(asset: Asset, path: Path, sha256: str, source: str, **extra: Any) -> dict[str, Any]:
    """Write the sidecar of a file that has just been checked (``extra``: e.g. the conversion it passed)."""
    st = path.stat()
    rec = {"asset": asset.name, "filename": asset.filename, "sha256": sha256, "size": st.st_size,
           "verified": asset.sha256 == sha256, "source": source, "licence": asset.licence,
           "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "mtime_ns": st.st_mtime_ns, **extra}
    data = json.dumps(rec, indent=1).encode()
    atomic_write_bytes(_sidecar(path), lambda f: f.write(data))
    return rec


def check_file(asset: Asset, path: Path, sha256: str, size: int) -> None:
    """Raise WeightsError unless ``sha256`` / ``size`` match the registry (when it knows them)."""
    if asset.size is not None and size != asset.size:
        raise WeightsError(f"{path} has {size} bytes but {asset.name!r} ({asset.filename}) has {asset.size}; "
                           "wrong or truncated file")
    if asset.sha256 is not None and sha256 != asset.sha256:
        raise WeightsError(f"{path} has SHA-256 {sha256} but {asset.name!r} ({asset.filename}) must have "
                           f"{asset.sha256}; wrong, corrupt or tampered file")


def cached_status(name: str | Asset, cache: str | os.PathLike | None = None, *, full: bool = False) -> str:
    """State of an asset in the cache: ``missing``, ``ok`` (hash matches the registry), ``unverified`` (accepted
    without a published hash, still matching the recorded one), ``modified`` (changed since it was checked) or
    ``unchecked`` (a file put there by hand, no record). ``full`` re-hashes instead of trusting size + mtime."""
    asset = get_asset(name)
    return _status(asset, cached_path(asset, cache), full)


def _status(asset: Asset, path: Path, full: bool = False) -> str:
    if not path.is_file():
        return "missing"
    rec = read_record(path)
    if rec is None or rec.get("filename") != asset.filename:
        return "unchecked"
    st = path.stat()
    if full:
        same = st.st_size == rec.get("size") and sha256_file(path) == rec.get("sha256")
    else:
        same = st.st_size == rec.get("size") and st.st_mtime_ns == rec.get("mtime_ns")
    if not same:
        return "modified"
    if asset.sha256 is not None:
        return "ok" if rec.get("sha256") == asset.sha256 else "modified"
    return "unverified"


def validate_cached(asset: Asset, path: Path) -> bool:
    """True when the cached file can be used as is. A file without a valid record is re-hashed: kept (and recorded)
    when it matches the registry hash, otherwise reported and left alone (False)."""
    status = _status(asset, path)
    if status in ("ok", "unverified"):
        if status == "unverified":
            log.warning("using %s (%s): no published SHA-256; accepted by you, recorded hash still matches",
                        asset.name, path)
        return True
    if status == "missing":
        return False
    if asset.sha256 is not None:
        digest = sha256_file(path)
        if digest == asset.sha256 and (asset.size is None or path.stat().st_size == asset.size):
            write_record(asset, path, digest, source=str(path))
            return True
    log.warning("cached %s (%s) is %s: it does not match its checked hash and will not be used",
                asset.name, path, "modified" if status == "modified" else "unrecorded")
    return False
