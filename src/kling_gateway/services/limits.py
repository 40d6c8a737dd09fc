"""Admission limits for creates: request rate per key, tasks in flight per user and per key, and
tasks in flight per (upstream account, upstream model).

Why each exists:

* **rate per key** (token bucket, 429/1302): one client's retry loop must not eat the gateway's or
  the database's capacity; it is checked first because it is the cheapest refusal and the one abuse
  hits.
* **in flight per user / per key** (429/1303): a user's many keys share the user's cap, and one
  leaked or runaway key cannot occupy all of the user's share.
* **in flight per upstream account × model** (wait, then 429/1303): Kling enforces its own
  concurrency per account and answers 1303 past it; staying under that cap keeps every accepted
  create *accepted upstream* instead of refused after we have written a row. Beyond capacity a
  create waits (bounded by ``upstream_queue_wait_seconds``) for a slot, polling the count.

Everything lives in shared storage so several gateway processes enforce one limit: in-flight counts
are read from ``tasks`` (the source of truth, so a finished task frees its slot with no bookkeeping
to leak) and the bucket is a row per key, or a Redis hash when ``redis_url`` is set.

**Exactness.** ``admit`` counts, then the caller inserts the row: admits that run concurrently may
all see the same free slot, so a cap can be overshot by the number of concurrent admits. Within one
process, ``hold()`` closes that window for the upstream cap: wrapped around ``admit`` *and* the row
insert, it serializes them per (account, model), which also makes the wait a FIFO queue. Across
processes the overshoot stays bounded by the number of processes admitting at the same instant;
Kling's own 1303 is the backstop (handled on submit). User/key caps stay best-effort (documented,
cheap).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from contextvars import ContextVar, Token
from dataclasses import dataclass, fields
from time import monotonic
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy.ext.asyncio import AsyncEngine

from ..domain.overrides import Defaults
from ..errors import ConcurrencyLimited, ConfigError, RateLimited
from ..settings import Settings
from ..storage.limits import LimitStore
from .auth import Principal
from .key_limits import OwnLimits

if TYPE_CHECKING:  # annotations only: redis is imported only when configured
    from redis.asyncio import Redis
    from redis.commands.core import AsyncScript

log = logging.getLogger("kling_gateway.limits")

_FIRST_STEP = 0.025  # seconds between slot polls, growing ×1.5 up to _MAX_STEP
_MAX_STEP = 0.25
_LOCK_GRACE = 1.0  # extra time hold() may queue for the in-process lock beyond the configured wait
_REDIS_RETRY_SECONDS = 5.0
REDIS_PREFIX = "kgw:rate:"

Scope = tuple[int, str]
# Set by hold(): the (scope, deadline) of the wait that began when the caller started queueing for
# it.
_HELD: ContextVar[tuple[Scope, float] | None] = ContextVar(
    "kling_gateway_limits_held", default=None
)


@dataclass(frozen=True)
class LimitSettings:
    user_max_in_flight: int | None = None  # KGW_USER_MAX_IN_FLIGHT
    key_max_in_flight: int | None = None  # KGW_KEY_MAX_IN_FLIGHT
    key_rate_per_second: float | None = None  # KGW_KEY_RATE_PER_SECOND (token bucket refill)
    key_rate_burst: int = 20  # KGW_KEY_RATE_BURST
    upstream_model_concurrency: int | None = (
        None  # KGW_UPSTREAM_MODEL_CONCURRENCY (per account × model)
    )
    upstream_queue_wait_seconds: float = 0.0  # KGW_UPSTREAM_QUEUE_WAIT_SECONDS; 0 = refuse at once
    redis_url: str | None = None  # KGW_REDIS_URL

    def __post_init__(self) -> None:
        """A cap of 0 would refuse every create: a mistake worth failing at start, not at request
        time."""
        for name in ("user_max_in_flight", "key_max_in_flight", "upstream_model_concurrency"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"KGW_{name.upper()} must be at least 1 (or unset for no limit)")
        if self.key_rate_per_second is not None and not self.key_rate_per_second > 0:
            raise ConfigError("KGW_KEY_RATE_PER_SECOND must be above 0 (or unset for no limit)")
        if self.key_rate_burst < 1:
            raise ConfigError("KGW_KEY_RATE_BURST must be at least 1")
        if not self.upstream_queue_wait_seconds >= 0:
            raise ConfigError("KGW_UPSTREAM_QUEUE_WAIT_SECONDS must be 0 or more")

    @classmethod
    def from_settings(cls, settings: Settings) -> LimitSettings:
        """Reads the ``KGW_`` settings by name, with this class's defaults for any not declared
        (yet)."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            value = getattr(settings, f.name, f.default)
            secret = getattr(value, "get_secret_value", None)  # a Redis URL may carry a password
            values[f.name] = secret() if callable(secret) else value
        if not values["redis_url"]:
            values["redis_url"] = None
        return cls(**values)


class _Bucket(Protocol):
    async def take(self, key_id: int, now_ms: int) -> bool: ...
    async def aclose(self) -> None: ...


class _DbBucket:
    __slots__ = ("_burst", "_rate", "_store")

    def __init__(self, store: LimitStore, rate: float, burst: int) -> None:
        self._store, self._rate, self._burst = store, rate, burst

    async def take(self, key_id: int, now_ms: int) -> bool:
        return await self._store.take_token(
            key_id, now_ms, rate_per_second=self._rate, burst=self._burst
        )

    async def aclose(self) -> None:
        """The engine belongs to the gateway."""


# Nano-tokens as integers (exact in Lua doubles up to 2^53). A missing hash is a full bucket; the
# key expires once it would have refilled, so idle keys cost Redis nothing. A clock behind ``u``
# refills nothing.
_LUA_TAKE = """
local now, rate = tonumber(ARGV[1]), tonumber(ARGV[2])
local cap, one = tonumber(ARGV[3]), tonumber(ARGV[4])
local state = redis.call('HMGET', KEYS[1], 't', 'u')
local tokens, updated = tonumber(state[1]), tonumber(state[2])
if tokens == nil or updated == nil then
  tokens, updated = cap, now
elseif now > updated then
  tokens = math.min(cap, tokens + (now - updated) * rate)
  updated = now
end
if tokens < one then
  return 0
end
local left = string.format('%d', tokens - one)
redis.call('HSET', KEYS[1], 't', left, 'u', string.format('%d', updated))
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
"""


class _RedisBucket:
    """The bucket in Redis (one Lua script, atomic per key). While Redis fails, the database bucket
    takes over: limits keep holding, and after one failure Redis is left alone for
    ``_REDIS_RETRY_SECONDS`` so a black-holed Redis does not add its connect timeout to every
    create."""

    __slots__ = ("_args", "_down_until", "_fallback", "_redis", "_script")

    def __init__(self, url: str, rate: float, burst: int, fallback: _DbBucket) -> None:
        from redis.asyncio import Redis  # imported only when configured

        nano = 1_000_000_000
        rate_nano_ms = max(1, round(rate * nano / 1000))
        cap = burst * nano
        self._args = (rate_nano_ms, cap, nano, -(-cap // rate_nano_ms) + 1000)
        self._redis: Redis = Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
        self._script: AsyncScript = self._redis.register_script(_LUA_TAKE)
        self._fallback = fallback
        self._down_until = float("-inf")  # monotonic time before which Redis is not tried again

    async def take(self, key_id: int, now_ms: int) -> bool:
        from redis.exceptions import RedisError

        if monotonic() < self._down_until:
            return await self._fallback.take(key_id, now_ms)
        rate, cap, one, ttl = self._args
        try:
            taken = await self._script(
                keys=[f"{REDIS_PREFIX}{key_id}"], args=[now_ms, rate, cap, one, ttl]
            )
        except (RedisError, OSError) as exc:
            self._down_until = monotonic() + _REDIS_RETRY_SECONDS
            log.warning(
                "rate limit: Redis unavailable (%s); using the database bucket for %gs",
                exc,
                _REDIS_RETRY_SECONDS,
            )
            return await self._fallback.take(key_id, now_ms)
        return bool(taken)

    async def aclose(self) -> None:
        await self._redis.aclose()


class Limiter:
    """One per gateway process. ``admit`` is called before a create's row is inserted; with no limit
    configured it returns at once without touching storage."""

    __slots__ = (
        "_bucket",
        "_clock",
        "_counting",
        "_engine",
        "_locks",
        "_own",
        "_store",
        "configured",
        "enabled",
        "settings",
    )

    def __init__(
        self, engine: AsyncEngine, clock: Callable[[], float], settings: LimitSettings
    ) -> None:
        self._engine, self._clock = engine, clock
        self.settings = s = settings
        self._store = LimitStore(
            engine,
            user=s.user_max_in_flight is not None,
            key=s.key_max_in_flight is not None,
            upstream=s.upstream_model_concurrency is not None,
        )
        self._counting = any(self._store.scopes)
        self._bucket: _Bucket | None = None
        if s.key_rate_per_second is not None:
            self._bucket = self._make_bucket(s.key_rate_per_second, s.key_rate_burst)
        # True: any principal may carry its own limits (migration 0009), so every create asks
        # admit(), which returns at once, touching no storage, for a principal without limits of
        # either kind.
        self.configured = self._counting or self._bucket is not None
        self.enabled = True
        self._locks: dict[Scope, asyncio.Lock] = {}
        # Per-user and per-key overrides of the limits above (migration 0009;
        # services/key_limits.py).
        defaults = Defaults(
            s.user_max_in_flight, s.key_max_in_flight, s.key_rate_per_second, s.key_rate_burst
        )
        self._own = OwnLimits[_Bucket](engine, defaults, self._make_bucket)

    def _make_bucket(self, rate: float, burst: int) -> _Bucket:
        db = _DbBucket(LimitStore(self._engine, user=False, key=False, upstream=False), rate, burst)
        url = self.settings.redis_url
        return _RedisBucket(url, rate, burst, db) if url else db

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    async def admit(
        self, principal: Principal, upstream_account_id: int, upstream_model: str
    ) -> None:
        """Raise ``RateLimited`` (1302), ``ConcurrencyLimited`` (1303) or, past a daily spend cap,
        ``InsufficientBalance`` (1102), or return when the create may go ahead; may wait up to
        ``upstream_queue_wait_seconds`` for an upstream slot. The principal's own limits override
        the settings' (domain/overrides.py); with neither, it returns at once without touching
        storage."""
        own = principal.key.user_limits is not None or principal.key.key_limits is not None
        if not self.configured and not own:
            return
        s = self.settings
        lim = self._own.for_principal(principal)
        key_id = principal.key.id
        rate = lim.rate_per_second
        if rate is not None and not await self._take(key_id, rate, lim.rate_burst):
            raise RateLimited(
                f"request rate limit exceeded for this API key ({rate:g} per second, "
                f"bursts of {lim.rate_burst}); slow down and retry"
            )
        await self._own.check_spend(principal, lim, self._now_ms())
        flags = (
            lim.user_max_in_flight is not None,
            lim.key_max_in_flight is not None,
            s.upstream_model_concurrency is not None,
        )
        if not any(flags):
            return
        store = self._store if flags == self._store.scopes else self._own.store(flags)
        user, key, upstream = await store.in_flight(
            principal.user_id, key_id, upstream_account_id, upstream_model
        )
        if lim.user_max_in_flight is not None and user >= lim.user_max_in_flight:
            raise ConcurrencyLimited(
                f"concurrent task limit reached for this account: {user} tasks in progress "
                f"(limit {lim.user_max_in_flight}); retry when one finishes"
            )
        if lim.key_max_in_flight is not None and key >= lim.key_max_in_flight:
            raise ConcurrencyLimited(
                f"concurrent task limit reached for this API key: {key} tasks in progress "
                f"(limit {lim.key_max_in_flight}); retry when one finishes"
            )
        cap = s.upstream_model_concurrency
        if cap is not None and upstream >= cap:
            await self._wait_for_slot((upstream_account_id, upstream_model), cap, upstream)

    async def _take(self, key_id: int, rate: float, burst: int) -> bool:
        s = self.settings
        default = self._bucket is not None and (rate, burst) == (
            s.key_rate_per_second,
            s.key_rate_burst,
        )
        bucket = (
            self._bucket if default and self._bucket is not None else self._own.bucket(rate, burst)
        )
        return await bucket.take(key_id, self._now_ms())

    async def _wait_for_slot(self, scope: Scope, cap: int, seen: int) -> None:
        """Poll the scope's count until it drops under ``cap`` or the wait (begun in ``hold()`` if
        the caller holds this scope, else now) runs out; then 1303."""
        loop = asyncio.get_running_loop()
        held = _HELD.get()
        wait = self.settings.upstream_queue_wait_seconds
        deadline = held[1] if held is not None and held[0] == scope else loop.time() + wait
        step = _FIRST_STEP
        while (remaining := deadline - loop.time()) > 0:
            await asyncio.sleep(min(step, remaining))
            step = min(step * 1.5, _MAX_STEP)
            seen = await self._store.upstream_in_flight(*scope)
            if seen < cap:
                return
        raise ConcurrencyLimited(_upstream_full(seen, cap, wait))

    def hold(
        self, upstream_account_id: int, upstream_model: str
    ) -> AbstractAsyncContextManager[None]:
        """Optional, for exactness in one process: wrap ``admit`` **and** the task insert in ``async
        with limiter.hold(account, model):`` so no other create of this process can count the same
        free slot. A no-op (shared ``nullcontext``) when no upstream cap is configured."""
        if self.settings.upstream_model_concurrency is None:
            return _NO_HOLD
        return _Hold(self, (upstream_account_id, upstream_model))

    def _lock(self, scope: Scope) -> asyncio.Lock:
        lock = self._locks.get(scope)
        if lock is None:  # scopes are accounts × models: a handful, never evicted
            lock = self._locks[scope] = asyncio.Lock()
        return lock

    async def aclose(self) -> None:
        for bucket in [self._bucket, *self._own.buckets()]:
            if bucket is not None:
                await bucket.aclose()


def _upstream_full(seen: int, cap: int, waited: float) -> str:
    after = f" after waiting {waited:g}s" if waited > 0 else ""
    return (
        "concurrency limit reached for this model upstream: "
        f"{seen} tasks in progress (limit {cap}){after}; retry later"
    )


_NO_HOLD: AbstractAsyncContextManager[None] = contextlib.nullcontext()


class _Hold:
    """The in-process FIFO for one (account, model): queueing for the lock counts against the
    configured wait (plus a short grace, so a burst of instant creates is serialized rather than
    refused)."""

    __slots__ = ("_limiter", "_lock", "_scope", "_token")

    def __init__(self, limiter: Limiter, scope: Scope) -> None:
        self._limiter = limiter
        self._scope = scope
        self._lock: asyncio.Lock | None = None
        self._token: Token[tuple[Scope, float] | None] | None = None

    async def __aenter__(self) -> None:
        loop = asyncio.get_running_loop()
        wait = self._limiter.settings.upstream_queue_wait_seconds
        deadline = loop.time() + wait
        lock = self._limiter._lock(self._scope)
        try:
            async with asyncio.timeout(wait + _LOCK_GRACE):
                await lock.acquire()
        except TimeoutError:
            cap = self._limiter.settings.upstream_model_concurrency or 0
            raise ConcurrencyLimited(_upstream_full(cap, cap, wait)) from None
        self._lock = lock
        self._token = _HELD.set((self._scope, deadline))

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._token is not None:
            _HELD.reset(self._token)
        if self._lock is not None:
            self._lock.release()
