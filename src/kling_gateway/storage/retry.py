"""Run again a transaction PostgreSQL aborted to break a deadlock (40P01) or a serialization failure
(40001).

Both mean the server rolled the whole transaction back and nothing of it was written, so running it
again is safe; a bounded number of tries, with a short random pause so the two sides do not meet
again in step. The lock order (money.py) is what prevents deadlocks; this is the defence behind it.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

RETRYABLE = frozenset({"40P01", "40001"})  # deadlock_detected, serialization_failure
ATTEMPTS = 4
PAUSE_SECONDS = 0.005  # the first pause's upper bound, doubled each try


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a driver error: asyncpg's own exceptions carry it as ``sqlstate``;
    SQLAlchemy's ``DBAPIError`` wraps the driver's error as ``orig`` (asyncpg's adapted error has
    ``sqlstate``/``pgcode`` and the asyncpg exception as its ``__cause__``)."""
    orig = getattr(exc, "orig", None)
    for candidate in (exc, orig, getattr(orig, "__cause__", None), exc.__cause__):
        if candidate is None:
            continue
        code = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if isinstance(code, str):
            return code
    return None


def retryable(exc: BaseException) -> bool:
    return sqlstate(exc) in RETRYABLE


async def retried(run: Callable[[], Awaitable[T]], attempts: int = ATTEMPTS) -> T:
    """``await run()``, again while it fails retryably, at most ``attempts`` times in all."""
    for attempt in range(1, attempts):
        try:
            return await run()
        except Exception as exc:
            if not retryable(exc):
                raise
        await asyncio.sleep(random.uniform(0, PAUSE_SECONDS * 2 ** (attempt - 1)))
    return await run()
