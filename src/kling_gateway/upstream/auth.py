"""How the gateway proves itself to Kling: an AK/SK-signed HS256 JWT (kling-api.md
§2.2) or a raw API key.

A token lives 30 minutes, so one is cached and re-signed a few minutes before ``exp`` rather than
per request (what Kling's own samples and well-behaved clients do).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import jwt

TOKEN_LIFETIME_S = 1800
NOT_BEFORE_SKEW_S = 5
REFRESH_MARGIN_S = 300


@dataclass(frozen=True, slots=True)
class Credentials:
    access_key: str | None = None
    secret_key: str | None = None
    api_key: str | None = None

    def __post_init__(self) -> None:
        if not self.api_key and not (self.access_key and self.secret_key):
            raise ValueError(
                "upstream credentials need an API key or both an access key and a secret key"
            )

    def __repr__(self) -> str:  # never let a secret reach a log line through repr()
        kind = "api_key" if self.api_key else f"access_key={self.access_key!r}"
        return f"Credentials({kind}, secrets=***)"


def sign_jwt(access_key: str, secret_key: str, now: float) -> str:
    issued = int(now)
    claims = {
        "iss": access_key,
        "exp": issued + TOKEN_LIFETIME_S,
        "nbf": issued - NOT_BEFORE_SKEW_S,
    }
    with warnings.catch_warnings():
        # Kling issues the secret; its length is not ours to choose, so PyJWT's
        # short-key advice is noise.
        warnings.simplefilter("ignore", jwt.warnings.InsecureKeyLengthWarning)
        return jwt.encode(claims, secret_key, algorithm="HS256", headers={"typ": "JWT"})


class Authorizer:
    """Produces the ``Authorization`` header value, caching a JWT until shortly
    before it expires."""

    __slots__ = ("_clock", "_creds", "_expires", "_value")

    def __init__(self, creds: Credentials, clock: Callable[[], float] = time.time) -> None:
        self._creds = creds
        self._clock = clock
        self._value = ""
        self._expires = 0.0

    def header(self) -> str:
        if self._creds.api_key:
            return f"Bearer {self._creds.api_key}"
        now = self._clock()
        if now >= self._expires:
            assert self._creds.access_key is not None and self._creds.secret_key is not None
            self._value = f"Bearer {sign_jwt(self._creds.access_key, self._creds.secret_key, now)}"
            self._expires = now + TOKEN_LIFETIME_S - REFRESH_MARGIN_S
        return self._value
