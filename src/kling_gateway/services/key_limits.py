"""Per-user and per-key limits on the create path (services/limits.py asks this module).

The overrides arrive with the principal (joined into the key lookup, cached by services/auth.py), so
choosing the limits costs no query. What they add is only what they need: a token bucket for a rate
the defaults do not use (built once per (rate, burst) and kept), a count statement for scopes the
defaults do not count, and — only for a principal with a daily spend cap — one query for the day's
spend.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine

from ..domain.overrides import Defaults, Effective, day_start_ms, effective, spend_refusal
from ..errors import RateLimited
from ..storage.limits import LimitStore
from ..storage.user_limits import UserLimitStore
from .auth import Principal

B = TypeVar("B")
Flags = tuple[bool, bool, bool]


class SpendCapReached(RateLimited):
    """Kling's 429/1102 ("resource pack used up"), raised as a limit refusal so that, like 1302 and
    1303, it never refuses an idempotent retry of a task the client already has
    (services/tasks.py)."""

    code = 1102


class OwnLimits(Generic[B]):
    __slots__ = (
        "_buckets",
        "_defaults",
        "_engine",
        "_make_bucket",
        "_spend",
        "_stores",
        "defaults",
    )

    def __init__(
        self,
        engine: AsyncEngine,
        defaults: Defaults,
        make_bucket: Callable[[float, int], B],
    ) -> None:
        self._engine = engine
        self.defaults = defaults
        self._defaults = effective(defaults, None, None)
        self._make_bucket = make_bucket
        self._buckets: dict[tuple[float, int], B] = {}
        self._stores: dict[Flags, LimitStore] = {}
        self._spend = UserLimitStore(engine)

    def for_principal(self, principal: Principal) -> Effective:
        key = principal.key
        if key.user_limits is None and key.key_limits is None:
            return self._defaults
        return effective(self.defaults, key.user_limits, key.key_limits)

    def bucket(self, rate: float, burst: int) -> B:
        """The bucket for a rate; the defaults' own bucket is Limiter's, this serves the
        overrides."""
        found = self._buckets.get((rate, burst))
        if found is None:  # one per distinct override: a handful, kept for the process's life
            found = self._buckets[(rate, burst)] = self._make_bucket(rate, burst)
        return found

    def buckets(self) -> list[B]:
        return list(self._buckets.values())

    def store(self, flags: Flags) -> LimitStore:
        found = self._stores.get(flags)
        if found is None:
            user, key, upstream = flags
            found = self._stores[flags] = LimitStore(
                self._engine, user=user, key=key, upstream=upstream
            )
        return found

    async def check_spend(self, principal: Principal, limits: Effective, now_ms: int) -> None:
        """429/1102 (Kling's "resource pack used up") once today's spend has reached a cap."""
        if not limits.spend_capped:
            return
        spent_user, spent_key = await self._spend.spent_since(
            principal.user_id, principal.key.id, day_start_ms(now_ms)
        )
        why = spend_refusal(limits, spent_user, spent_key)
        if why is not None:
            raise SpendCapReached(f"{why}; the cap resets at 00:00 UTC")
