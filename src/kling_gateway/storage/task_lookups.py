"""Operator look-ups of task rows that the request path never makes (so no hot-path twin)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from . import task_sql
from .tasks import TaskRecord


async def by_external_id_of_any_user(
    engine: AsyncEngine, external_task_id: str, limit: int
) -> list[TaskRecord]:
    """Tasks whose client-given ``external_task_id`` is this, of any user (the id is unique per user
    only), by user."""
    stmt = task_sql.by_external_id_of_any_user(external_task_id, limit)
    async with engine.connect() as conn:
        return [TaskRecord(**row._mapping) for row in (await conn.execute(stmt)).all()]
