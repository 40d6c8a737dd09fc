"""The operator's task queries: filtered, paged searches and a task's money movements.

Searches page by offset over ``id`` descending (ids are time-ordered), fetching one row more than
the page to say whether another page exists, rather than counting a table that only grows.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from ..domain.task_filter import TaskFilter
from .money import LedgerEntry
from .tables import ledger_entries, tasks, users
from .tasks import TaskRecord


async def search(
    engine: AsyncEngine, f: TaskFilter, user_id: int | None
) -> tuple[list[TaskRecord], bool]:
    """(one page of tasks, whether more follow). ``f.kind`` needs no condition: every task is
    text2video (domain/task_filter.py)."""
    stmt = select(tasks)
    conditions: list[Any] = []
    if user_id is not None:
        conditions.append(tasks.c.user_id == user_id)
    if f.status is not None:
        conditions.append(tasks.c.status == f.status)
    if f.model is not None:
        conditions.append(tasks.c.public_model == f.model)
    if f.since_ms is not None:
        conditions.append(tasks.c.created_at >= f.since_ms)
    if f.until_ms is not None:
        conditions.append(tasks.c.created_at < f.until_ms)
    if f.external_task_id is not None:
        conditions.append(tasks.c.external_task_id == f.external_task_id)
    stmt = stmt.where(*conditions).order_by(tasks.c.id.desc())
    stmt = stmt.offset((f.page - 1) * f.page_size).limit(f.page_size + 1)
    async with engine.connect() as conn:
        rows = (await conn.execute(stmt)).all()
    records = [TaskRecord(**r._mapping) for r in rows[: f.page_size]]
    return records, len(rows) > f.page_size


async def user_names(engine: AsyncEngine, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    async with engine.connect() as conn:
        rows = (
            await conn.execute(select(users.c.id, users.c.name).where(users.c.id.in_(ids)))
        ).all()
    return {r.id: r.name for r in rows}


async def ledger_for_task(engine: AsyncEngine, task_id: str) -> list[LedgerEntry]:
    stmt = (
        select(ledger_entries)
        .where(ledger_entries.c.task_id == task_id)
        .order_by(ledger_entries.c.id)
    )
    async with engine.connect() as conn:
        return [LedgerEntry(**r._mapping) for r in (await conn.execute(stmt)).all()]
