"""Weights registry and cache: known files with URL, SHA-256, size and licence; verified downloads; offline mode.

    >>> from ferkit.hub import get_weights
    >>> path = get_weights("yunet")          # cache hit, or a verified download (not in offline mode)

See ``docs/weights.md``.
"""

from ferkit.hub.assets import ASSETS, Asset, find_by_sha256, get_asset, list_assets
from ferkit.hub.cache import cache_dir, cached_path, cached_status, is_offline, weights_dir
from ferkit.hub.download import download
from ferkit.hub.store import get_weights, import_weights, verify_cache

__all__ = [
    "ASSETS", "Asset", "get_asset", "list_assets", "find_by_sha256",
    "cache_dir", "weights_dir", "cached_path", "cached_status", "is_offline",
    "get_weights", "download", "import_weights", "verify_cache",
]
