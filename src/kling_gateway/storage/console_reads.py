"""Read-only figures for the operator console: counts per status and day, render times, spend per day,
and filtered pages of tasks. Days are UTC days, computed in SQL as whole ``created_at // 86 400 000``."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from .tables import ledger_entries, tasks, users
from .tasks import TaskRecord

DAY_MS = 86_400_000
_TASK_FIELDS = tuple(f.name for f in fields(TaskRecord))


@dataclass(frozen=True, slots=True)
class TaskFilter:
    status: str | None = None
    user_id: int | None = None
    model: str | None = None
    since_ms: int | None = None
    until_ms: int | None = None


@dataclass(frozen=True, slots=True)
class TaskRow:
    task: TaskRecord
    user_name: str


class ConsoleReads:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def _all(self, stmt: Any) -> list[Any]:
        async with self._engine.connect() as conn:
            return list((await conn.execute(stmt)).all())

    async def status_counts(self, since_ms: int) -> dict[str, int]:
        stmt = (
            select(tasks.c.status, func.count())
            .where(tasks.c.created_at >= since_ms)
            .group_by(tasks.c.status)
        )
        return {status: int(n) for status, n in await self._all(stmt)}

    async def render_ms(self, since_ms: int, limit: int = 5000) -> list[int]:
        """Create-to-finish times of the latest succeeded tasks (updated_at is the terminal write)."""
        stmt = (
            select(tasks.c.updated_at - tasks.c.created_at)
            .where(tasks.c.status == "succeed", tasks.c.created_at >= since_ms)
            .order_by(tasks.c.id.desc())
            .limit(limit)
        )
        return [int(v) for (v,) in await self._all(stmt)]

    async def tasks_per_day(self, since_ms: int) -> dict[int, int]:
        day = (tasks.c.created_at // DAY_MS).label("day")
        stmt = select(day, func.count()).where(tasks.c.created_at >= since_ms).group_by(day)
        return {int(d): int(n) for d, n in await self._all(stmt)}

    async def spend_per_day(self, since_ms: int) -> dict[int, int]:
        """Charged micro-credits of settled tasks per day (refunds charge nothing)."""
        day = (ledger_entries.c.created_at // DAY_MS).label("day")
        stmt = (
            select(day, func.coalesce(func.sum(ledger_entries.c.charged_micro), 0))
            .where(ledger_entries.c.kind == "close", ledger_entries.c.created_at >= since_ms)
            .group_by(day)
        )
        return {int(d): int(n) for d, n in await self._all(stmt)}

    async def task_page(self, f: TaskFilter, offset: int, limit: int) -> list[TaskRow]:
        stmt = (
            select(tasks, users.c.name.label("user_name"))
            .join(users, users.c.id == tasks.c.user_id)
            .order_by(tasks.c.id.desc())
            .offset(offset)
            .limit(limit)
        )
        if f.status:
            stmt = stmt.where(tasks.c.status == f.status)
        if f.user_id is not None:
            stmt = stmt.where(tasks.c.user_id == f.user_id)
        if f.model:
            stmt = stmt.where(tasks.c.public_model == f.model)
        if f.since_ms is not None:
            stmt = stmt.where(tasks.c.created_at >= f.since_ms)
        if f.until_ms is not None:
            stmt = stmt.where(tasks.c.created_at < f.until_ms)
        rows = await self._all(stmt)
        return [
            TaskRow(TaskRecord(**{k: r._mapping[k] for k in _TASK_FIELDS}), r._mapping["user_name"])
            for r in rows
        ]

    async def user_name(self, user_id: int) -> str | None:
        stmt = select(users.c.name).where(users.c.id == user_id)
        async with self._engine.connect() as conn:
            return (await conn.execute(stmt)).scalar_one_or_none()
