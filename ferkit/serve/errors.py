"""HTTP errors as JSON: ``{"error": {"status": 415, "type": "unsupported_media_type", "message": "..."}}``."""

from __future__ import annotations

from typing import Any

#: Default ``type`` per status code.
TYPES = {400: "bad_request", 401: "unauthorized", 404: "not_found", 405: "method_not_allowed",
         408: "request_timeout", 413: "payload_too_large", 415: "unsupported_media_type", 422: "invalid_request",
         429: "too_many_requests", 500: "internal_error", 501: "not_implemented", 503: "unavailable",
         504: "timeout"}


class ServeError(Exception):
    """A failure with its HTTP status, a short machine-readable ``type`` and a message for people.

    Args:
        status: HTTP status code. message: one line saying what was wrong and what is accepted.
        type: machine-readable kind (default from :data:`TYPES`). headers: extra response headers (``Retry-After``).
    """

    def __init__(self, status: int, message: str, *, type: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message = int(status), message
        self.type = type or TYPES.get(self.status, "error")
        self.headers = dict(headers or {})

    def body(self, **extra: Any) -> dict[str, Any]:
        return error_body(self.status, self.message, type=self.type, **extra)


def error_body(status: int, message: str, *, type: str | None = None, **extra: Any) -> dict[str, Any]:
    """The JSON body of an error answer."""
    return {"error": {"status": int(status), "type": type or TYPES.get(int(status), "error"), "message": message,
                      **extra}}


def overloaded(message: str, retry_after: int) -> ServeError:
    """503 with ``Retry-After``: the queue is full or the request ran out of time."""
    return ServeError(503, message, type="overloaded", headers={"Retry-After": str(int(retry_after))})
