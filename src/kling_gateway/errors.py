"""The error tree. Every client-visible failure is one of these and carries its Kling
HTTP status and code.

    KlingError
      ├── AuthError              401 / 1000–1004
      ├── PermissionDenied       403 / 1103
      ├── InsufficientBalance    429 / 1102
      ├── BadRequest             400 / 1200  (unreadable body)
      ├── InvalidParameter       400 / 1201  (a field breaks a rule; the message names it)
      ├── NotFound               404 / 1203
      ├── RateLimited            429 / 1302
      ├── ConcurrencyLimited     429 / 1303
      └── UpstreamFailure        5xx / 5000–5002 (or the upstream's own code, scrubbed)

One mapping (``KlingError.to_body``) turns any of them into the Kling envelope, so routes never
build error bodies by hand and the wire codes live in this one visible place.
"""

from __future__ import annotations

from typing import Any

# Wire codes (kling-api.md §5), next to their HTTP statuses.
HTTP_STATUS_BY_CODE: dict[int, int] = {
    1000: 401,
    1001: 401,
    1002: 401,
    1003: 401,
    1004: 401,
    1100: 429,
    1101: 429,
    1102: 429,
    1103: 403,
    1200: 400,
    1201: 400,
    1202: 404,
    1203: 404,
    1300: 400,
    1301: 400,
    1302: 429,
    1303: 429,
    1304: 429,
    5000: 500,
    5001: 503,
    5002: 504,
}


def http_status_for(code: int) -> int:
    """HTTP status Kling uses for ``code``; unknown codes fall back by their family."""
    if code in HTTP_STATUS_BY_CODE:
        return HTTP_STATUS_BY_CODE[code]
    if code >= 5000:
        return 500
    return 400


class KlingError(Exception):
    """A failure the client sees as a Kling envelope."""

    code: int = 5000

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    @property
    def http_status(self) -> int:
        return http_status_for(self.code)

    def to_body(self, request_id: str) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "request_id": request_id, "data": None}


class AuthError(KlingError):
    code = 1002


class PermissionDenied(KlingError):
    code = 1103


class InsufficientBalance(KlingError):
    code = 1102


class BadRequest(KlingError):
    code = 1200


class InvalidParameter(KlingError):
    code = 1201


class NotFound(KlingError):
    code = 1203


class RateLimited(KlingError):
    code = 1302


class ConcurrencyLimited(KlingError):
    code = 1303


class UpstreamFailure(KlingError):
    code = 5000


class ConfigError(Exception):
    """Operator configuration that cannot work (bad mapping, cycle, unreadable file).
    Never client-visible."""


class BodyTooLarge(BadRequest):
    """Kling's 1200, but with HTTP 413 so proxies and clients see the real reason."""

    @property
    def http_status(self) -> int:
        return 413
