"""Verified, resumable downloads into the weights cache (standard library ``urllib`` only).

A download streams into ``.<filename>.part`` next to the final file. When the connection drops, the next attempt
resumes with an HTTP ``Range`` request (or restarts if the server ignores it). The finished file's size and SHA-256
are checked; only then is it renamed to its final name. A file with the wrong size or hash is deleted and the next
URL is tried; nothing unverified is left under the final name.

``FERKIT_WEIGHTS_URL=<base>`` replaces every asset's URLs by ``<base>/<filename>`` (a mirror, or a local server
in tests).
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import os
import time
import urllib.error
import urllib.request
from pathlib import Path

from ferkit.checkpoint import sha256_file
from ferkit.errors import WeightsError
from ferkit.hub.assets import Asset, get_asset
from ferkit.hub.cache import cached_path, check_file, is_offline, validate_cached, write_record

log = logging.getLogger(__name__)

CHUNK = 1 << 16


class _Fatal(Exception):
    """This URL cannot work (HTTP error, HTML page instead of a file): try the next one without retrying."""


def asset_urls(asset: Asset, url: str | None = None) -> list[str]:
    """URLs to try for ``asset``: ``url`` if given, else ``$FERKIT_WEIGHTS_URL/<filename>``, else the registry's."""
    if url:
        return [url]
    base = os.environ.get("FERKIT_WEIGHTS_URL", "").strip()
    if base:
        return [f"{base.rstrip('/')}/{asset.filename}"]
    return list(asset.urls)


def offline_message(asset: Asset, path: Path) -> str:
    command = f"ferkit weights import /path/to/{asset.filename} --name {asset.name}"
    command += "" if asset.verifiable else " --allow-unverified"
    return (f"weights {asset.name!r} ({asset.filename}) are not in the cache ({path.parent}) and offline mode is on "
            f"(FERKIT_OFFLINE / offline=True). Copy the file from a machine with internet access and run "
            f"`{command}`, or pass the file path explicitly.")


def download(name: str | Asset, *, cache_dir: str | os.PathLike | None = None, url: str | None = None,
             progress: bool = True, allow_unverified: bool = False, offline: bool | None = None,
             retries: int = 3, timeout: float = 30.0) -> Path:
    """Download an asset into the cache (or return it if already cached and valid).

    Args:
        name: asset name (``ferkit.hub.ASSETS``) or an :class:`Asset`.
        url: download from this URL instead of the registry's.
        allow_unverified: accept an asset that has no published SHA-256 (its computed hash is recorded and logged).
        retries: extra attempts per URL after a dropped connection (each resumes the partial file).

    Raises:
        WeightsError: offline mode, no checksum and not ``allow_unverified``, or every URL failed (HTTP error,
            interrupted too often, wrong size or hash).
    """
    asset = get_asset(name)
    final = cached_path(asset, cache_dir)
    if validate_cached(asset, final):
        return final
    if is_offline(offline):
        raise WeightsError(offline_message(asset, final))
    if not asset.verifiable and not allow_unverified:
        raise WeightsError(f"{asset.name!r} has no published SHA-256, so a download cannot be verified; pass "
                           "allow_unverified=True (CLI --allow-unverified) to accept it anyway (its hash is recorded), "
                           f"or import a file you trust with `ferkit weights import PATH --name {asset.name} "
                           "--allow-unverified`")
    final.parent.mkdir(parents=True, exist_ok=True)
    with _lock(final):
        if validate_cached(asset, final):  # another process finished it meanwhile
            return final
        errors = []
        for u in asset_urls(asset, url):
            try:
                digest = _download_verified(asset, u, final, progress, retries, timeout)
            except (_Fatal, WeightsError) as e:
                errors.append(f"{u}: {e}")
                log.warning("download of %s from %s failed: %s", asset.name, u, e)
                continue
            rec = write_record(asset, final, digest, source=u)
            if not rec["verified"]:
                log.warning("%s downloaded WITHOUT a published checksum; recorded SHA-256 %s", asset.name, digest)
            return final
    raise WeightsError(f"could not download {asset.name!r} ({asset.filename}):\n  " + "\n  ".join(errors))


def _download_verified(asset: Asset, url: str, final: Path, progress: bool, retries: int, timeout: float) -> str:
    """Fetch ``url`` into the partial file, verify it and rename it to ``final``; return its SHA-256.
    A hash failure after a resumed download is retried once from scratch."""
    part = final.with_name(f".{final.name}.part")
    for fresh in (False, True):
        if fresh:
            part.unlink(missing_ok=True)
        resumed = part.exists() and part.stat().st_size > 0
        _fetch(url, part, asset.size, progress, retries, timeout)
        size = part.stat().st_size
        digest = sha256_file(part)
        try:
            check_file(asset, part, digest, size)
        except WeightsError:
            part.unlink(missing_ok=True)
            if resumed and not fresh:
                log.warning("%s: resumed file fails verification; downloading again from the start", asset.name)
                continue
            raise
        os.replace(part, final)
        return digest
    raise AssertionError("unreachable")


def _fetch(url: str, part: Path, expected: int | None, progress: bool, retries: int, timeout: float) -> None:
    """Stream ``url`` into ``part``, resuming after dropped connections, until the server's length is reached."""
    last: Exception | None = None
    for attempt in range(retries + 1):
        have = part.stat().st_size if part.exists() else 0
        if expected is not None and have > expected:
            part.unlink()
            have = 0
        if expected is not None and have == expected:
            return
        try:
            _fetch_once(url, part, have, progress, timeout)
            return
        except (urllib.error.URLError, http.client.HTTPException, OSError) as e:
            if isinstance(e, urllib.error.HTTPError):
                raise _Fatal(f"HTTP {e.code} {e.reason}") from e
            last = e
            if attempt < retries:
                log.warning("download interrupted (%s); attempt %d/%d resumes", e, attempt + 2, retries + 1)
                time.sleep(min(2.0, 0.2 * 2 ** attempt))
    kept = part.stat().st_size if part.exists() else 0
    raise WeightsError(f"connection failed {retries + 1} times ({last}); {kept} bytes kept in {part} — "
                       "running the download again resumes from there")


def _fetch_once(url: str, part: Path, have: int, progress: bool, timeout: float) -> None:
    from ferkit import __version__

    headers = {"User-Agent": f"ferkit/{__version__}"}
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # range beyond the end: the partial file is stale
            part.unlink(missing_ok=True)
            raise ConnectionError("server rejected the resume range; restarting") from e
        raise
    with resp:
        resumed = have and resp.status == 206 and resp.headers.get("Content-Range", "").startswith(f"bytes {have}-")
        if not resumed:
            have = 0
        ctype = resp.headers.get("Content-Type", "")
        if ctype.startswith("text/html") and not part.name.endswith(".html.part"):
            raise _Fatal("the server returned an HTML page instead of the file (a login, quota or confirmation page?)")
        length = resp.headers.get("Content-Length")
        remaining = int(length) if length is not None else None
        _stream(resp, part, "ab" if resumed else "wb", have, remaining, progress)


def _stream(resp, part: Path, mode: str, have: int, remaining: int | None, progress: bool) -> None:
    from tqdm import tqdm

    total = None if remaining is None else have + remaining
    got = 0
    with open(part, mode) as f, tqdm(total=total, initial=have, unit="B", unit_scale=True, leave=False,
                                     desc=part.name.strip(".").removesuffix(".part"), disable=not progress) as bar:
        while block := resp.read(CHUNK):
            f.write(block)
            got += len(block)
            bar.update(len(block))
        f.flush()
        os.fsync(f.fileno())
    if remaining is not None and got < remaining:
        raise http.client.IncompleteRead(b"", remaining - got)


@contextlib.contextmanager
def _lock(final: Path):
    """Inter-process lock around one asset's download (POSIX ``flock``; no-op where unavailable)."""
    try:
        import fcntl
    except ImportError:  # Windows
        yield
        return
    lock_path = final.with_name(f".{final.name}.lock")
    with open(lock_path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
