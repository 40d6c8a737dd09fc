"""The task-row side of mirroring: claim succeeded tasks, record the outcome once.

A succeeded task is **pending** while ``origin_result_json`` is NULL and **settled** once it is set
(to the upstream videos, whatever the outcome: mirrored or given up). That makes "not mirrored yet"
one indexable predicate, and every settling write a compare-and-set on
``origin_result_json IS NULL``: two workers that both finish a download cannot both write the row.

Claims reuse the row's ``lease_until`` / ``lease_owner``. The poller only leases active tasks and
releases the lease on every write, so on a succeeded row those columns are free; here they mean "a
mirror worker holds this task until ``lease_until``" and, after a transient failure, "not before
``lease_until``".
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from ..storage import task_sql
from ..storage.tasks import TaskRecord, any_row

RETRY_OWNER = "mirror:retry"


class MirrorRows:
    __slots__ = ("_engine",)

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def claim(self, now_ms: int, limit: int, owner: str, lease_ms: int) -> list[TaskRecord]:
        """Lease up to ``limit`` pending tasks, oldest first (they are the closest to giving up).

        Same shape as the poller's claim: ``UPDATE … WHERE id IN (pending, unleased) RETURNING``,
        with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL; the outer WHERE repeats the predicate so a
        row another claimer took in between is not taken twice."""
        ids = task_sql.mirror_pending(now_ms, limit)
        if self._engine.dialect.name == "postgresql":
            ids = ids.with_for_update(skip_locked=True)
        elif not await any_row(self._engine, ids):
            return []
        stmt = task_sql.mirror_claim(ids, now_ms, owner, lease_ms)
        async with self._engine.begin() as conn:
            rows = (await conn.execute(stmt)).all()
        return sorted((TaskRecord(**r._mapping) for r in rows), key=lambda t: t.id)

    async def settle(self, task_id: str, *, result_json: str, origin_result_json: str) -> bool:
        """Write the outcome and free the lease if no one settled the task first; True if we did."""
        stmt = task_sql.mirror_settle(
            task_id,
            result_json=result_json,
            origin_result_json=origin_result_json,
            lease_until=None,
            lease_owner=None,
        )
        async with self._engine.begin() as conn:
            return (await conn.execute(stmt)).rowcount == 1

    async def retry_later(self, task_id: str, not_before_ms: int) -> bool:
        stmt = task_sql.mirror_settle(task_id, lease_until=not_before_ms, lease_owner=RETRY_OWNER)
        async with self._engine.begin() as conn:
            return (await conn.execute(stmt)).rowcount == 1
