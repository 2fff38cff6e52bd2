"""Limits and switches of the HTTP server, in one frozen dataclass (``ferkit serve`` flags map onto its fields)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: Pillow format names accepted by default (``Image.format`` of the decoded file).
DEFAULT_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF")
FORMAT_ALIASES = {"JPG": "JPEG", "TIF": "TIFF"}
#: Environment variables read by :meth:`ServeLimits.from_env` (flags override them).
ENV_API_KEY = "FERKIT_SERVE_API_KEY"
ENV_CORS = "FERKIT_SERVE_CORS_ORIGINS"
MB = 1024 * 1024


@dataclass(frozen=True)
class ServeLimits:
    """What one server accepts and how it batches.

    Attributes:
        max_upload_bytes: largest image request body (413 above; a larger ``Content-Length`` is refused unread).
        max_pixels: largest image (width x height, read from the header before decoding; 413 above).
        max_images: most images in one request (413 above).
        formats: accepted image formats (Pillow names; 415 for others).
        request_timeout: seconds for one image request, upload included (503 ``timeout`` after it).
        max_batch: most faces in one forward pass (``--batch-size``). max_wait_ms: how long the first face of a
            batch waits for others.
        max_queue: most requests in flight (uploading, waiting or running); more get 503 with ``Retry-After``.
        prep_threads: threads decoding images and detecting faces (the forward pass has its own thread).
        max_video_bytes / max_video_frames / max_videos / video_timeout: video uploads: size, processed frames,
            concurrent videos, seconds per video.
        api_key: required ``X-API-Key`` on ``/v1/*`` (None: no key). cors_origins: allowed browser origins.
        retry_after: seconds suggested in ``Retry-After`` of 503 answers.
    """

    max_upload_bytes: int = 20 * MB
    max_pixels: int = 40_000_000
    max_images: int = 16
    formats: tuple[str, ...] = DEFAULT_FORMATS
    request_timeout: float = 30.0
    max_batch: int = 8
    max_wait_ms: float = 5.0
    max_queue: int = 64
    prep_threads: int = 2
    max_video_bytes: int = 200 * MB
    max_video_frames: int = 1800
    max_videos: int = 2
    video_timeout: float = 600.0
    api_key: str | None = field(default=None, repr=False)
    cors_origins: tuple[str, ...] = ()
    retry_after: int = 1

    def __post_init__(self) -> None:
        for name in ("max_upload_bytes", "max_pixels", "max_images", "max_batch", "max_queue", "prep_threads",
                     "max_video_bytes", "max_video_frames", "max_videos"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("request_timeout", "video_timeout"):
            if float(getattr(self, name)) <= 0:
                raise ValueError(f"{name} must be > 0 seconds, got {getattr(self, name)}")
        if float(self.max_wait_ms) < 0:
            raise ValueError(f"max_wait_ms must be >= 0, got {self.max_wait_ms}")
        formats = tuple(dict.fromkeys(FORMAT_ALIASES.get(f.strip().upper(), f.strip().upper()) for f in self.formats))
        if not formats:
            raise ValueError("formats must name at least one image format (e.g. JPEG, PNG)")
        from ferkit.serve.images import check_formats

        check_formats(formats)
        object.__setattr__(self, "formats", formats)
        object.__setattr__(self, "cors_origins", tuple(self.cors_origins))
        object.__setattr__(self, "api_key", self.api_key or None)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> ServeLimits:
        """Limits from ``FERKIT_SERVE_API_KEY`` and ``FERKIT_SERVE_CORS_ORIGINS`` (comma-separated), then
        ``overrides`` (None values are ignored)."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        if env.get(ENV_API_KEY):
            values["api_key"] = env[ENV_API_KEY]
        if env.get(ENV_CORS):
            values["cors_origins"] = tuple(o.strip() for o in env[ENV_CORS].split(",") if o.strip())
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def replace(self, **changes: Any) -> ServeLimits:
        """A copy with ``changes`` applied (unknown names raise ``TypeError``)."""
        return dataclasses.replace(self, **changes)

    def public(self) -> dict[str, Any]:
        """The limits a client may see (no API key)."""
        out = dataclasses.asdict(self)
        out.pop("api_key")
        out["api_key_required"] = self.api_key is not None
        out["formats"] = list(self.formats)
        out["cors_origins"] = list(self.cors_origins)
        return out
