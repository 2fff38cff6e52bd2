"""Getting weights: from the cache, by download, or by importing a local file."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any

from ferkit.checkpoint import atomic_path, sha256_file
from ferkit.errors import WeightsError
from ferkit.hub.assets import ASSETS, Asset, find_by_sha256, get_asset
from ferkit.hub.cache import cached_path, cached_status, check_file, validate_cached, write_record
from ferkit.hub.download import download

log = logging.getLogger(__name__)


def get_weights(name: str | Asset, *, cache_dir: str | os.PathLike | None = None, offline: bool | None = None,
                progress: bool = True, allow_unverified: bool = False) -> Path:
    """Path of a verified weight file: from the cache, else downloaded (never in offline mode).

    Args:
        name: asset name (``ferkit weights list``).
        cache_dir: cache root (default ``$FERKIT_HOME`` or ``~/.cache/ferkit``); files live in ``<root>/weights``.
        offline: never use the network (default: ``FERKIT_OFFLINE`` environment variable).
        allow_unverified: allow downloading an asset that has no published SHA-256.

    Raises:
        WeightsError: not cached and offline (the message says how to import the file), or the download failed.
    """
    return download(name, cache_dir=cache_dir, progress=progress, allow_unverified=allow_unverified, offline=offline)


def import_weights(path: str | os.PathLike, name: str | None = None, *, cache_dir: str | os.PathLike | None = None,
                   allow_unverified: bool = False) -> Path:
    """Copy a local file into the cache after checking its SHA-256.

    Args:
        path: the file.
        name: asset it should be; when None the asset is identified by the file's hash.
        allow_unverified: accept the file for an asset that has no published SHA-256 (its hash is recorded).

    Returns:
        The cached path.

    Raises:
        FileNotFoundError: no such file.
        WeightsError: hash or size mismatch, unknown hash without ``name``, or unverifiable without opt-in.
    """
    src = Path(path).expanduser()
    if src.is_dir():
        src = _ir_xml(src)
    if not src.is_file():
        raise FileNotFoundError(f"weights file not found: {src}")
    digest, size = sha256_file(src), src.stat().st_size
    asset = _identify(digest, src) if name is None else get_asset(name)
    check_file(asset, src, digest, size)
    if not asset.verifiable and not allow_unverified:
        raise WeightsError(f"{asset.name!r} has no published SHA-256, so {src} cannot be verified (its SHA-256 is "
                           f"{digest}); pass allow_unverified=True (CLI --allow-unverified) if you trust the file")
    extra = _check_converts(asset, src)
    dest = cached_path(asset, cache_dir)
    _atomic_copy(src, dest, digest)
    write_record(asset, dest, digest, source=str(src.resolve()), **extra)
    if not asset.verifiable:
        log.warning("%s imported WITHOUT a published checksum; recorded SHA-256 %s", asset.name, digest)
    if asset.companion:
        companion = get_asset(asset.companion)
        import_weights(src.with_name(companion.filename), companion.name, cache_dir=cache_dir,
                       allow_unverified=allow_unverified)
    return dest


def _ir_xml(folder: Path) -> Path:
    """The one ``.xml`` of an OpenVINO IR folder (a folder argument means an IR)."""
    xmls = sorted(folder.glob("*.xml"))
    if len(xmls) != 1:
        raise WeightsError(f"{folder} is a folder: give a weights file, or a folder holding exactly one OpenVINO IR "
                           f"(.xml + .bin); found {len(xmls)} .xml file(s)")
    return xmls[0]


def _check_converts(asset: Asset, src: Path) -> dict[str, Any]:
    """For assets in a foreign format: the file must convert (the converter checks the whole architecture)."""
    if not asset.convert:
        return {}
    from ferkit.convert import convert, detect_format

    fmt = detect_format(src)
    if fmt != asset.convert:
        raise WeightsError(f"{src} is not a {asset.convert} file (detected: {fmt or 'unknown format'}); "
                           f"{asset.name!r} is {asset.description}")
    _, info = convert(src)
    return {"format": fmt, "converts_to": info["model"], "num_params": info.get("num_params")}


def _identify(digest: str, src: Path) -> Asset:
    asset = find_by_sha256(digest)
    if asset is None:
        raise WeightsError(f"no known weights have the SHA-256 of {src} ({digest}); pass the asset name "
                           "(CLI --name) to import a file whose checksum is not published")
    return asset


def _atomic_copy(src: Path, dest: Path, digest: str) -> None:
    """Copy to a temporary file next to ``dest``, re-check the hash of the copy, then rename (:func:`atomic_path`)."""
    with atomic_path(dest) as tmp:
        shutil.copyfile(src, tmp)
        if sha256_file(tmp) != digest:
            raise WeightsError(f"copy of {src} changed while importing; try again")


def verify_cache(cache_dir: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """Re-hash every cached asset; rows ``{"name", "status", "path"}`` with status from
    :func:`ferkit.hub.cache.cached_status` (``missing`` rows included)."""
    rows = []
    for name in ASSETS:
        status = cached_status(name, cache_dir, full=True)
        if status == "unchecked":
            asset = ASSETS[name]
            path = cached_path(asset, cache_dir)
            status = "ok" if validate_cached(asset, path) else "unchecked"
        rows.append({"name": name, "status": status, "path": str(cached_path(name, cache_dir))})
    return rows
