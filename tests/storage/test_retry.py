"""Which driver errors are run again (retry.py), and how many times."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy.exc import DBAPIError

from kling_gateway.storage import retry


class _Adapted(Exception):
    """What SQLAlchemy's asyncpg dialect raises as ``DBAPIError.orig``."""

    def __init__(self, sqlstate: str | None) -> None:
        super().__init__("adapted")
        self.sqlstate = self.pgcode = sqlstate


def _wrapped(orig: Exception) -> DBAPIError:
    return DBAPIError("UPDATE users", None, orig)


def _adapted_from(cause: Exception) -> _Adapted:
    adapted = _Adapted(None)
    adapted.__cause__ = cause
    return adapted


@pytest.mark.parametrize(
    ("exc", "again"),
    [
        (asyncpg.DeadlockDetectedError("deadlock detected"), True),
        (asyncpg.SerializationError("could not serialize"), True),
        (asyncpg.UniqueViolationError("duplicate key"), False),
        (_wrapped(_Adapted("40P01")), True),
        (_wrapped(_Adapted("40001")), True),
        (_wrapped(_Adapted("23505")), False),
        (_wrapped(_adapted_from(asyncpg.DeadlockDetectedError("deadlock detected"))), True),
        (RuntimeError("not a database error"), False),
    ],
)
def test_deadlocks_and_serialization_failures_are_run_again(exc: Exception, again: bool) -> None:
    assert retry.retryable(exc) is again


async def test_a_retryable_failure_is_run_again_a_bounded_number_of_times() -> None:
    calls: list[int] = []

    async def fails(times: int) -> str:
        calls.append(1)
        if len(calls) <= times:
            raise asyncpg.DeadlockDetectedError("deadlock detected")
        return "done"

    assert await retry.retried(lambda: fails(retry.ATTEMPTS - 1)) == "done"
    assert len(calls) == retry.ATTEMPTS
    calls.clear()
    with pytest.raises(asyncpg.DeadlockDetectedError):
        await retry.retried(lambda: fails(retry.ATTEMPTS))
    assert len(calls) == retry.ATTEMPTS


async def test_any_other_failure_is_raised_at_once() -> None:
    calls: list[int] = []

    async def duplicate() -> None:
        calls.append(1)
        raise asyncpg.UniqueViolationError("duplicate key")

    with pytest.raises(asyncpg.UniqueViolationError):
        await retry.retried(duplicate)
    assert calls == [1]
