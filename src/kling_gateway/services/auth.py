"""Who is calling. Two schemes share one ``Authorization: Bearer …`` header:

* ``sk-…`` gateway keys, looked up by SHA-256 hash (the key itself is never stored);
* Kling-style JWTs (HS256, ``iss`` = access key, signed with the secret key), so Kling's official
  and third-party clients work against the gateway by changing only the base URL.

Lookups are cached for ``key_cache_seconds`` (hits and misses), so the hot path costs a dict read,
and a verified token is remembered with its ``nbf``/``exp`` so a client reusing a token pays for
HMAC once.

A lookup is a database query through the engine. Were every entry simply to expire, each key in
use would cost one such query per request in flight at that moment, every ``key_cache_seconds``, and
every request would wait behind them (docs/benchmarks.md). So concurrent loads of one key share one
query, and an entry in the last fifth of its life is reloaded in the background while it is still
served: a busy key never expires, and nothing is served past its TTL (the reload's expiry counts
from when it started).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import jwt

from ..crypto import SecretBox
from ..domain.shape import storable
from ..domain.token_window import token_window
from ..errors import AuthError, PermissionDenied
from ..storage.accounts import AccountStore, KeyRecord
from .client_address import check_client_ip

SK_PREFIX = "sk-"
AK_PREFIX = "ak-"
_CACHE_LIMIT = 50_000
_REFRESH_AHEAD = 0.2  # the share of an entry's life, at its end, in which a hit starts a reload

log = logging.getLogger(__name__)
Cache = dict[str, tuple[float, "Principal | None"]]
Load = Callable[[str], Awaitable["Principal | None"]]


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_sk() -> tuple[str, str, str]:
    """(key, visible prefix, hash). The key is shown once; only the hash is kept."""
    key = SK_PREFIX + secrets.token_urlsafe(32)
    return key, key[:11], hash_key(key)


def new_aksk() -> tuple[str, str]:
    """(access key, secret). The access key is the key's visible prefix too, so it fits that
    24-character column: ``ak-`` and 20 hex digits (PostgreSQL refused the 27 of 12 bytes; SQLite
    ignores lengths). It names the key; the secret is what authenticates."""
    return AK_PREFIX + secrets.token_hex(10), secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class Principal:
    key: KeyRecord
    secret: str | None = None  # decrypted JWT secret, cached alongside the record

    @property
    def user_id(self) -> int:
        return self.key.user_id

    def check_model(self, public_model: str) -> None:
        allowed = self.key.allowed_models
        if allowed is not None and public_model not in allowed:
            raise PermissionDenied(f"model_name: this key may not use model {public_model!r}")


class Authenticator:
    __slots__ = (
        "_box",
        "_by_ak",
        "_by_hash",
        "_clock",
        "_generation",
        "_leeway",
        "_loading",
        "_max_lifetime",
        "_store",
        "_tokens",
        "_ttl",
    )

    def __init__(
        self,
        store: AccountStore,
        box: SecretBox,
        clock: Callable[[], float],
        *,
        ttl: float,
        leeway: int,
        max_lifetime: int = 86_400,
    ) -> None:
        self._store = store
        self._box = box
        self._clock = clock
        self._ttl = ttl
        self._leeway = leeway
        self._max_lifetime = max_lifetime  # KGW_JWT_MAX_LIFETIME_SECONDS
        self._by_hash: Cache = {}
        self._by_ak: Cache = {}
        self._tokens: dict[
            str, tuple[float, float, Principal]
        ] = {}  # token -> (nbf, exp, principal)
        self._loading: dict[tuple[int, str], asyncio.Task[Principal | None]] = {}
        self._generation = 0  # bumped by forget(): a load begun before it must not refill the cache

    def forget(self) -> None:
        """Drop every cached lookup (after a key is revoked in this process)."""
        self._by_hash.clear()
        self._by_ak.clear()
        self._tokens.clear()
        self._loading.clear()
        self._generation += 1

    async def authenticate(self, header: str | None) -> Principal:
        if not header:
            raise AuthError("Authorization is empty", code=1001)
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise AuthError("Authorization must be 'Bearer <token>'", code=1002)
        now = self._clock()
        if token.startswith(SK_PREFIX):
            principal = await self._cached(self._by_hash, hash_key(token), now, self._load_sk)
            if principal is None:
                raise AuthError("Authorization is invalid: unknown API key", code=1002)
        else:
            principal = await self._jwt(token, now)
        self._check_key(principal.key, now)
        if principal.key.allowed_ips is not None:  # the key's IP allow-list (migration 0009)
            check_client_ip(principal.key.allowed_ips)
        return principal

    def _check_key(self, key: KeyRecord, now: float) -> None:
        if key.disabled:
            raise AuthError("Authorization is invalid: key is disabled", code=1002)
        if key.expires_at is not None and now * 1000 >= key.expires_at:
            raise AuthError("Authorization has expired: key expired", code=1004)

    async def _jwt(self, token: str, now: float) -> Principal:
        hit = self._tokens.get(token)
        if hit is not None:
            nbf, exp, cached = hit
            self._check_window(nbf, exp, now)
            # The key record is re-read through the TTL'd access-key cache, so disabling a key (or
            # rotating its secret) cuts off a reused token as fast as a new one.
            current = await self._cached(
                self._by_ak, cached.key.access_key or "", now, self._load_ak
            )
            if (
                current is not None
                and current.key.id == cached.key.id
                and current.secret == cached.secret
            ):
                return current
            del self._tokens[token]
        if token.count(".") != 2:
            raise AuthError("Authorization is invalid: not an API key or a JWT", code=1002)
        try:
            claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise AuthError("Authorization is invalid: malformed token", code=1002) from exc
        iss = claims.get("iss")
        if not isinstance(iss, str) or not iss:
            raise AuthError("Authorization is invalid: token has no iss", code=1002)
        # a NUL names no stored key (and PostgreSQL would refuse the lookup)
        found = await self._cached(self._by_ak, iss, now, self._load_ak) if storable(iss) else None
        if found is None or found.secret is None:
            raise AuthError("Authorization is invalid: unknown access key", code=1002)
        try:
            # Signature and claim types only; the time window is judged below by our own clock
            # (PyJWT would read the wall clock, and a test or replayed clock must decide alike).
            verified = jwt.decode(
                token,
                found.secret,
                algorithms=["HS256"],
                options={
                    "require": ["exp"],
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                    "verify_aud": False,
                },
            )
        except jwt.PyJWTError as exc:
            raise AuthError("Authorization is invalid: bad signature or claims", code=1002) from exc
        nbf, exp = token_window(verified.get("nbf", 0), verified["exp"], now, self._max_lifetime)
        self._check_window(nbf, exp, now)
        if len(self._tokens) >= _CACHE_LIMIT:
            self._tokens.clear()
        self._tokens[token] = (nbf, exp, found)
        return found

    def _check_window(self, nbf: float, exp: float, now: float) -> None:
        if now + self._leeway < nbf:
            raise AuthError("Authorization is not yet valid", code=1003)
        if now - self._leeway >= exp:
            raise AuthError("Authorization has expired", code=1004)

    async def _cached(
        self,
        cache: Cache,
        ident: str,
        now: float,
        load: Load,
    ) -> Principal | None:
        hit = cache.get(ident)
        if hit is not None and hit[0] > now:
            if hit[0] - now <= self._ttl * _REFRESH_AHEAD:
                self._start_load(cache, ident, load)  # served now, reloaded for the next callers
            return hit[1]
        # shielded: one caller giving up (a client disconnect) must not cancel the others' shared
        # load
        return await asyncio.shield(self._start_load(cache, ident, load))

    def _start_load(self, cache: Cache, ident: str, load: Load) -> asyncio.Task[Principal | None]:
        """The one load of ``ident`` in flight, started if there is none."""
        slot = (id(cache), ident)
        task = self._loading.get(slot)
        if task is None:
            task = asyncio.ensure_future(self._load_into(cache, ident, load, self._generation))
            self._loading[slot] = task
            task.add_done_callback(lambda done: self._loaded(slot, done))
        return task

    def _loaded(self, slot: tuple[int, str], task: asyncio.Task[Principal | None]) -> None:
        if self._loading.get(slot) is task:
            del self._loading[slot]
        if not task.cancelled() and (exc := task.exception()) is not None:
            # a background reload's failure has no caller to raise to; the entry expires on its own
            log.warning("key lookup failed: %s", exc)

    async def _load_into(
        self,
        cache: Cache,
        ident: str,
        load: Load,
        generation: int,
    ) -> Principal | None:
        started = self._clock()
        principal = await load(ident)
        if generation == self._generation:
            if len(cache) >= _CACHE_LIMIT:
                cache.clear()
            cache[ident] = (started + self._ttl, principal)
        return principal

    async def _load_sk(self, key_hash: str) -> Principal | None:
        record = await self._store.key_by_hash(key_hash)
        return Principal(record) if record else None

    async def _load_ak(self, access_key: str) -> Principal | None:
        record = await self._store.key_by_access_key(access_key)
        if record is None or record.secret_enc is None:
            return None
        return Principal(record, self._box.decrypt(record.secret_enc))
