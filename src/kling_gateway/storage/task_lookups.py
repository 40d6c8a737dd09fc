"""Operator look-ups of task rows that the request path never makes (so no hot-path twin)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from .tables import tasks
from .tasks import TaskRecord


async def by_external_id_of_any_user(
    engine: AsyncEngine, external_task_id: str, limit: int
) -> list[TaskRecord]:
    """Tasks whose client-given ``external_task_id`` is this, of any user (the id is unique per user
    only), by user. Without a user to lead with, the (user_id, external_task_id) index cannot serve
    it: a scan, acceptable for an operator's look-up, never made per request."""
    stmt = (
        select(tasks)
        .where(tasks.c.external_task_id == external_task_id)
        .order_by(tasks.c.user_id)
        .limit(limit)
    )
    async with engine.connect() as conn:
        return [TaskRecord(**row._mapping) for row in (await conn.execute(stmt)).all()]
