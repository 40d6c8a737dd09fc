"""Figures for the operator's overview, each one SELECT: tasks per status, succeeded tasks' render
times, and tasks and spend per UTC day. Days are ``created_at // 86400000`` (SQLAlchemy's floor
division, integer on SQLite and PostgreSQL), so both group alike without dialect date functions."""

from __future__ import annotations

from sqlalchemy import BigInteger, ColumnElement, Label, func, literal, select
from sqlalchemy.ext.asyncio import AsyncEngine

from ..domain.overrides import DAY_MS
from .tables import ledger_entries, tasks

RENDER_SAMPLE = 100_000  # succeeded tasks read for percentiles: the newest ones in the window


async def status_counts(engine: AsyncEngine, since_ms: int) -> dict[str, int]:
    stmt = (
        select(tasks.c.status, func.count())
        .where(tasks.c.created_at >= since_ms)
        .group_by(tasks.c.status)
    )
    async with engine.connect() as conn:
        return {status: int(n) for status, n in (await conn.execute(stmt)).all()}


async def render_times(engine: AsyncEngine, since_ms: int) -> list[int]:
    """``updated_at − created_at`` of succeeded tasks created since ``since_ms``, ascending."""
    elapsed = (tasks.c.updated_at - tasks.c.created_at).label("ms")
    stmt = (
        select(elapsed)
        .where(tasks.c.status == "succeed", tasks.c.created_at >= since_ms)
        .order_by(tasks.c.id.desc())
        .limit(RENDER_SAMPLE)
    )
    async with engine.connect() as conn:
        return sorted(int(v) for v in (await conn.execute(stmt)).scalars())


def _day(column: ColumnElement[int]) -> Label[int]:
    return (column // literal(DAY_MS, BigInteger)).label("day")


async def tasks_per_day(engine: AsyncEngine, since_ms: int) -> dict[int, int]:
    day = _day(tasks.c.created_at)
    stmt = select(day, func.count()).where(tasks.c.created_at >= since_ms).group_by(day)
    async with engine.connect() as conn:
        return {int(d): int(n) for d, n in (await conn.execute(stmt)).all()}


async def spend_per_day(engine: AsyncEngine, since_ms: int) -> dict[int, int]:
    """Net micro-credits tasks took per day: reserves less what settles and refunds gave back."""
    day = _day(ledger_entries.c.created_at)
    stmt = (
        select(day, -func.sum(ledger_entries.c.amount_micro))
        .where(
            ledger_entries.c.created_at >= since_ms, ledger_entries.c.kind.in_(("reserve", "close"))
        )
        .group_by(day)
    )
    async with engine.connect() as conn:
        return {int(d): int(n or 0) for d, n in (await conn.execute(stmt)).all()}
