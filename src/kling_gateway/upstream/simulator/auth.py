"""Kling's two bearer schemes (kling-api.md §2): AK/SK-signed HS256 JWT, or a raw console API key.

exp/nbf are checked against the simulator clock rather than PyJWT's wall clock, so tests that move a
fake clock see tokens expire exactly as a live server would. Verified tokens are cached because a
gateway reuses one token for many requests and HMAC+JSON per request would dominate the hot path.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import jwt

from .config import SimulatorConfig
from .envelope import SimFailure

LEEWAY_SECONDS = 5.0
_CACHE_LIMIT = 4096


@dataclass(slots=True, frozen=True)
class _Verified:
    access_key: str
    secret_key: str
    exp: float
    nbf: float | None


class Authenticator:
    def __init__(self, config: SimulatorConfig, clock: Callable[[], float]) -> None:
        self._config = config
        self._clock = clock
        self._cache: dict[str, _Verified] = {}

    def authenticate(self, header: str | None) -> str:
        """Return the account name for an ``Authorization`` header value, or raise
        SimFailure (1001–1004)."""
        if not header:
            raise SimFailure(1001, "Authorization is empty")
        scheme, _, token = header.partition(" ")
        if scheme != "Bearer" or not token:
            raise SimFailure(1002, "Authorization is invalid")
        config = self._config
        if token in config.api_keys:
            return config.account_for(token)
        if token.count(".") != 2:
            raise SimFailure(1002, "Authorization is invalid")
        verified = self._cache.get(token)
        # Re-check the SK on a hit: keys may be revoked or rotated at runtime through the config.
        if verified is None or config.access_keys.get(verified.access_key) != verified.secret_key:
            verified = self._verify(token)
        now = self._clock()
        if verified.nbf is not None and verified.nbf > now + LEEWAY_SECONDS:
            raise SimFailure(1003, "Authorization is not yet valid")
        if verified.exp < now - LEEWAY_SECONDS:
            raise SimFailure(1004, "Authorization has expired")
        return config.account_for(verified.access_key)

    def _verify(self, token: str) -> _Verified:
        try:
            unverified = jwt.decode(token, options={"verify_signature": False})
            issuer = unverified.get("iss")
            secret = self._config.access_keys.get(issuer) if isinstance(issuer, str) else None
            if secret is None:
                raise SimFailure(1002, "Authorization is invalid")
            with warnings.catch_warnings():
                # PyJWT warns about HMAC keys under 32 bytes; the key is the customer's (and the
                # default "sim-sk" is short), so the warning is noise here — and fatal under pytest.
                warnings.simplefilter("ignore", jwt.InsecureKeyLengthWarning)
                claims = jwt.decode(
                    token,
                    secret,
                    algorithms=["HS256"],
                    options={
                        "verify_exp": False,
                        "verify_nbf": False,
                        "verify_iat": False,
                        "require": ["exp"],
                    },
                )
        except jwt.PyJWTError as exc:
            raise SimFailure(1002, "Authorization is invalid") from exc
        exp, nbf = claims.get("exp"), claims.get("nbf")
        if not isinstance(exp, int | float) or isinstance(exp, bool) or not _optional_number(nbf):
            raise SimFailure(1002, "Authorization is invalid")
        verified = _Verified(str(issuer), secret, float(exp), None if nbf is None else float(nbf))
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[token] = verified
        return verified


def _optional_number(value: object) -> bool:
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))
