"""Task rows. Every status change is a compare-and-set on the expected status: when it matches no row,
somebody else (a callback, another worker, another node) already moved the task and we do nothing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import Select, case, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from ..domain.task import ACTIVE, TaskStatus
from .hotpath import TASK_COLUMNS, HotPath, Step, UniqueViolation
from .tables import tasks, webhook_deliveries


class DuplicateExternalId(Exception):
    """The user already has a task under this ``external_task_id``."""


class Refused(Exception):
    """A required step of the insert transaction matched nothing; ``index`` says which."""

    def __init__(self, index: int) -> None:
        super().__init__(index)
        self.index = index


class DuplicateTaskId(Exception):
    """Two processes minted the same public id in one millisecond; mint again."""


@dataclass(slots=True)
class TaskRecord:
    id: str
    user_id: int
    key_id: int | None
    public_model: str
    upstream_model: str
    status: str
    status_msg: str
    external_task_id: str | None
    request_hash: str
    request_json: str
    callback_url: str | None
    mode: str
    duration: int
    sound: bool
    watermark: bool
    upstream_account_id: int | None
    upstream_task_id: str | None
    result_json: str | None
    unit_deduction: str | None
    created_at: int
    updated_at: int
    next_poll_at: int | None
    poll_attempts: int
    lease_until: int | None = None
    lease_owner: str | None = None
    callback_token_hash: str | None = None
    origin_result_json: str | None = None
    reserved_micro: int = 0
    charged_micro: int | None = None

    @property
    def task_status(self) -> TaskStatus:
        return TaskStatus(self.status)


_FIELDS = tuple(f.name for f in fields(TaskRecord))
assert _FIELDS == TASK_COLUMNS, "TaskRecord fields must follow the tasks table's column order"
_ACTIVE = [s.value for s in ACTIVE]
_SOUND, _WATERMARK = _FIELDS.index("sound"), _FIELDS.index("watermark")


def _record(row: Any) -> TaskRecord:
    return TaskRecord(**row._mapping)


def _from_tuple(row: Any) -> TaskRecord:
    record = TaskRecord(*row)
    record.sound = bool(row[_SOUND])  # SQLite hands booleans back as 0/1
    record.watermark = bool(row[_WATERMARK])
    return record


def _duplicate(record: TaskRecord, text: str, exc: Exception) -> Exception:
    text = text.lower()
    if "external_task_id" in text or "uq_tasks_user_id" in text:
        return DuplicateExternalId(record.external_task_id or "")
    return DuplicateTaskId(record.id)


class TaskStore:
    """Reads and writes of task rows. With a ``HotPath`` the per-request statements (insert, get, find,
    compare-and-set) run on the raw driver; scans and admin queries use the SQLAlchemy engine."""

    __slots__ = ("_engine", "_hot")

    def __init__(self, engine: AsyncEngine, hot: HotPath | None = None) -> None:
        self._engine = engine
        self._hot = hot

    async def insert(
        self, record: TaskRecord, *, before: Sequence[Step] = (), after: Sequence[Step] = ()
    ) -> None:
        """Insert the row; ``before``/``after`` steps (money) run in the same transaction. Raises
        ``Refused(index)`` when a required ``before`` step matched nothing (e.g. balance too low)."""
        if before or after:
            if self._hot is None:
                raise RuntimeError("money steps need the hot path (build_gateway always opens one)")
            steps = [*before, Step(self._hot.insert_sql, self._hot.insert_row(record)), *after]
            try:
                failed = await self._hot.run_tx(steps)
            except UniqueViolation as exc:
                raise _duplicate(record, exc.constraint, exc) from exc
            if failed is not None:
                raise Refused(failed)
            return
        if self._hot is not None:
            try:
                await self._hot.insert_task(record)
            except UniqueViolation as exc:
                raise _duplicate(record, exc.constraint, exc) from exc
            return
        values = {name: getattr(record, name) for name in _FIELDS}
        try:
            async with self._engine.begin() as conn:
                await conn.execute(tasks.insert().values(**values))
        except IntegrityError as exc:
            raise _duplicate(record, str(exc.orig), exc) from exc

    async def get(self, task_id: str) -> TaskRecord | None:
        if self._hot is not None:
            found = await self._hot.get_task(task_id)
            return _from_tuple(found) if found is not None else None
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(tasks).where(tasks.c.id == task_id))).first()
        return _record(row) if row else None

    async def find_for_user(self, user_id: int, ident: str) -> TaskRecord | None:
        """By public id first, then by the user's own ``external_task_id`` (Kling's one path slot).
        Rejected rows are invisible: the client never got their id."""
        if self._hot is not None:
            found = await self._hot.find_task(user_id, ident, TaskStatus.REJECTED.value)
            return _from_tuple(found) if found is not None else None
        stmt = (
            select(tasks)
            .where(
                tasks.c.user_id == user_id,
                or_(tasks.c.id == ident, tasks.c.external_task_id == ident),
                tasks.c.status != TaskStatus.REJECTED.value,
            )
            .order_by(case((tasks.c.id == ident, 0), else_=1))
            .limit(1)
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(stmt)).first()
        return _record(row) if row else None

    async def by_external_id(self, user_id: int, external_task_id: str) -> TaskRecord | None:
        stmt = select(tasks).where(tasks.c.user_id == user_id, tasks.c.external_task_id == external_task_id)
        async with self._engine.connect() as conn:
            row = (await conn.execute(stmt)).first()
        return _record(row) if row else None

    async def list_for_user(self, user_id: int, offset: int, limit: int) -> list[TaskRecord]:
        stmt = (
            select(tasks)
            .where(tasks.c.user_id == user_id, tasks.c.status != TaskStatus.REJECTED.value)
            .order_by(tasks.c.id.desc())
            .offset(offset)
            .limit(limit)
        )
        async with self._engine.connect() as conn:
            return [_record(r) for r in (await conn.execute(stmt)).all()]

    async def list_all(
        self, limit: int, status: str | None = None, user_id: int | None = None
    ) -> list[TaskRecord]:
        stmt = select(tasks).order_by(tasks.c.id.desc()).limit(limit)
        if status:
            stmt = stmt.where(tasks.c.status == status)
        if user_id is not None:
            stmt = stmt.where(tasks.c.user_id == user_id)
        async with self._engine.connect() as conn:
            return [_record(r) for r in (await conn.execute(stmt)).all()]

    async def transition(
        self,
        task_id: str,
        expected: TaskStatus,
        *,
        event: dict[str, Any] | None = None,
        after: Sequence[Step] = (),
        **values: Any,
    ) -> bool:
        """Compare-and-set: apply ``values`` only if the task is still in ``expected``; with ``event``,
        record the webhook delivery for this change in the same transaction (once per task and status)."""
        if self._hot is not None:
            return await self._hot.transition(task_id, expected.value, values, event, after)
        if after:
            raise RuntimeError("money steps need the hot path (build_gateway always opens one)")
        stmt = update(tasks).where(tasks.c.id == task_id, tasks.c.status == expected.value).values(**values)
        async with self._engine.begin() as conn:
            res = await conn.execute(stmt)
            if res.rowcount == 1 and event is not None:
                dup = select(webhook_deliveries.c.id).where(
                    webhook_deliveries.c.task_id == event["task_id"],
                    webhook_deliveries.c.task_status == event["task_status"],
                )
                if (await conn.execute(dup)).first() is None:
                    await conn.execute(webhook_deliveries.insert().values(**event))
        return res.rowcount == 1

    async def due(self, now_ms: int, limit: int) -> list[TaskRecord]:
        stmt = (
            select(tasks)
            .where(tasks.c.next_poll_at <= now_ms, tasks.c.status.in_(_ACTIVE))
            .order_by(tasks.c.next_poll_at)
            .limit(limit)
        )
        async with self._engine.connect() as conn:
            return [_record(r) for r in (await conn.execute(stmt)).all()]

    async def claim_due(self, now_ms: int, limit: int, owner: str, lease_ms: int) -> list[TaskRecord]:
        """Take up to ``limit`` due tasks under a lease, so no other worker or node reads them meanwhile.

        One ``UPDATE … WHERE id IN (due and unleased) RETURNING``: on PostgreSQL the inner select takes
        ``FOR UPDATE SKIP LOCKED`` (concurrent claimers pass over each other's rows instead of waiting); on
        SQLite the statement runs under the database write lock, so it is a compare-and-set by itself.
        """
        due = (
            select(tasks.c.id)
            .where(
                tasks.c.next_poll_at <= now_ms,
                tasks.c.status.in_(_ACTIVE),
                or_(tasks.c.lease_until.is_(None), tasks.c.lease_until < now_ms),
            )
            .order_by(tasks.c.next_poll_at)
            .limit(limit)
        )
        if self._engine.dialect.name == "postgresql":
            due = due.with_for_update(skip_locked=True)
        elif not await any_row(self._engine, due):
            return []
        stmt = (
            update(tasks)
            .where(tasks.c.id.in_(due.scalar_subquery()))
            .values(lease_until=now_ms + lease_ms, lease_owner=owner)
            .returning(*tasks.c)
        )
        async with self._engine.begin() as conn:
            rows = (await conn.execute(stmt)).all()
        return sorted((_record(r) for r in rows), key=lambda t: t.next_poll_at or 0)

    async def reschedule(self, task_id: str, expected: TaskStatus, next_poll_at: int, attempts: int) -> bool:
        return await self.transition(
            task_id,
            expected,
            next_poll_at=next_poll_at,
            poll_attempts=attempts,
            lease_until=None,
            lease_owner=None,
        )


async def any_row(engine: AsyncEngine, query: Select[Any]) -> bool:
    """SQLite: look before claiming. An UPDATE takes the database's one write lock even when it matches
    nothing, so an idle worker claiming every second would make request writes wait behind it (a tail of
    tens of milliseconds under load); a read takes no lock."""
    async with engine.connect() as conn:
        return (await conn.execute(query.limit(1))).first() is not None
