"""Task rows. Every status change is a compare-and-set on the expected status: when
it matches no row, somebody else (a callback, another worker, another node) already
moved the task and we do nothing."""

from __future__ import annotations

from dataclasses import dataclass, fields
from operator import attrgetter
from typing import Any

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncEngine

from ..domain.task import TaskStatus
from . import task_sql
from .create_pg import BALANCE, LEDGER_COLUMNS, QUOTA, reserve_insert
from .hotpath import Compiled, HotPath, Step, UniqueViolation
from .money import Close, MoneyStatements, Reserve, reserve_entry
from .task_sql import HISTORY, TASK_COLUMNS, TaskStatements, history_entry


class DuplicateExternalId(Exception):
    """The user already has a task under this ``external_task_id``."""


class Refused(Exception):
    """The insert's reserve was refused, nothing written: ``index`` 0 the balance, 1
    the key's quota."""

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
    status_history: str | None = None  # JSON list of {status, at, by}; see task_sql.HISTORY

    @property
    def task_status(self) -> TaskStatus:
        return TaskStatus(self.status)


_FIELDS = tuple(f.name for f in fields(TaskRecord))
assert _FIELDS == TASK_COLUMNS, "TaskRecord fields must follow the tasks table's column order"
_SOUND, _WATERMARK = _FIELDS.index("sound"), _FIELDS.index("watermark")


def _record(row: Any) -> TaskRecord:
    return TaskRecord(**row._mapping)


def _from_tuple(row: Any) -> TaskRecord:
    record = TaskRecord(*row)
    record.sound = bool(row[_SOUND])  # SQLite hands booleans back as 0/1
    record.watermark = bool(row[_WATERMARK])
    return record


def _duplicate(record: TaskRecord, text: str) -> Exception:
    text = text.lower()
    if "external_task_id" in text or "uq_tasks_user_id" in text:
        return DuplicateExternalId(record.external_task_id or "")
    return DuplicateTaskId(record.id)


class TaskStore:
    """Reads and writes of task rows. The per-request statements (insert, get, find,
    compare-and-set, re-point) run on the raw driver (``HotPath``); scans and
    listings on the SQLAlchemy engine."""

    __slots__ = ("_engine", "_hot", "_money", "_paid_insert", "_sql")

    def __init__(self, engine: AsyncEngine, hot: HotPath) -> None:
        self._engine = engine
        self._hot = hot
        self._sql = TaskStatements(hot)
        self._money = MoneyStatements(hot)
        # PostgreSQL: a paid insert is one statement (create_pg.py), with and without a key quota.
        self._paid_insert: dict[bool, Compiled] = {}
        if hot.postgres:
            self._paid_insert = {k: hot.compile(reserve_insert(k)) for k in (False, True)}

    async def insert(
        self,
        record: TaskRecord,
        *,
        reserve: Reserve | None = None,
    ) -> None:
        """Insert the row, with its ``reserve`` debited in the same transaction.
        Raises ``Refused(0)`` when the balance is too low, ``Refused(1)`` when the
        key's quota is (nothing is written). The status history's first entry goes in the same
        INSERT."""
        if record.status_history is None:
            first = history_entry(record.status, record.created_at, "create")
            record.status_history = f"[{first}]"
        try:
            if reserve is None:
                await self._hot.execute(self._sql.insert.sql, self._sql.insert_row(record))
            elif self._paid_insert:
                await self._insert_paid_pg(record, reserve)
            else:
                await self._insert_paid(record, reserve)
        except UniqueViolation as exc:
            raise _duplicate(record, exc.constraint) from exc

    async def _insert_paid(self, record: TaskRecord, reserve: Reserve) -> None:
        debits, entry = self._money.reserve_steps(reserve, record.id)
        insert = Step(self._sql.insert.sql, self._sql.insert_row(record))
        failed = await self._hot.run_tx([*debits, insert, *entry])
        if failed is not None:
            raise Refused(failed)

    async def _insert_paid_pg(self, record: TaskRecord, reserve: Reserve) -> None:
        with_key = reserve.key_id is not None
        stmt = self._paid_insert[with_key]
        params: dict[str, Any] = {
            "uid": reserve.user_id,
            "kid": reserve.key_id,
            "amt": reserve.amount,
        }
        params.update(zip(_TASK_PARAMS, _task_values(record), strict=True))
        entry = reserve_entry(reserve, record.id)
        params.update((f"l_{name}", entry[name]) for name in LEDGER_COLUMNS)
        passed = await self._hot.fetchone(stmt.sql, stmt.args(params))
        assert passed is not None  # the statement always answers one row
        if not passed[BALANCE]:
            raise Refused(0)
        if not passed[QUOTA]:
            raise Refused(1)

    async def get(self, task_id: str) -> TaskRecord | None:
        found = await self._hot.fetchone(self._sql.get.sql, [task_id])
        return _from_tuple(found) if found is not None else None

    async def find_for_user(self, user_id: int, ident: str) -> TaskRecord | None:
        """By public id first, then by the user's own ``external_task_id``. Rejected rows are
        invisible: the client never got their id."""
        find = self._sql.find
        found = await self._hot.fetchone(find.sql, find.args({"user_id": user_id, "ident": ident}))
        return _from_tuple(found) if found is not None else None

    async def by_external_id(self, user_id: int, external_task_id: str) -> TaskRecord | None:
        return await self._first(task_sql.by_external_id(user_id, external_task_id))

    async def list_for_user(self, user_id: int, offset: int, limit: int) -> list[TaskRecord]:
        return await self._all(task_sql.for_user(user_id, offset, limit))

    async def list_all(
        self, limit: int, status: str | None = None, user_id: int | None = None
    ) -> list[TaskRecord]:
        return await self._all(task_sql.listing(limit, status, user_id))

    async def transition(
        self,
        task_id: str,
        expected: TaskStatus,
        *,
        event: dict[str, Any] | None = None,
        close: Close | None = None,
        by: str = "gateway",
        **values: Any,
    ) -> bool:
        """Compare-and-set: apply ``values`` only if the task is still in ``expected``. With
        ``event``, the webhook delivery for this change is recorded in the same transaction (once
        per task and status); with ``close``, the reserve is closed there too. A new status is
        appended to the status history in the same UPDATE, as ``by`` (who saw it: poll, callback,
        submit, timeout…) at ``updated_at``."""
        new = values.get("status")
        if new is not None and new != expected.value:
            values[HISTORY] = history_entry(new, values.get("updated_at"), by)
        if event is not None and close is None and self._hot.postgres:
            sql, args = self._sql.cas_announced(task_id, expected.value, values, event)
            answer = await self._hot.fetchone(sql, args)
            return answer is not None and answer[0] == 1
        sql, args = self._sql.cas(task_id, expected.value, values)
        if event is None and close is None:
            return await self._hot.execute(sql, args) == 1
        steps = [Step(sql, args, require=True)]
        if close is not None:
            steps[:0] = self._money.lock_user(close)  # the user row before the task (money.py)
        if event is not None:
            steps.append(Step(self._sql.event.sql, self._sql.event.args(event)))
        if close is not None:
            steps.extend(self._money.close_steps(close))
        return await self._hot.run_tx(steps) is None

    async def repoint(self, task_id: str, from_account: int | None, to_account: int) -> bool:
        """Point a queued, never-submitted task at another account *before* calling it, so a crash
        mid-call leaves the refresher asking the account that may hold the task. Compare-and-set."""
        stmt = self._sql.repoint
        params = {"id": task_id, "from_account": from_account, "to_account": to_account}
        return await self._hot.execute(stmt.sql, stmt.args(params)) == 1

    async def due(self, now_ms: int, limit: int) -> list[TaskRecord]:
        return await self._all(task_sql.due(now_ms, limit))

    async def claim_due(
        self, now_ms: int, limit: int, owner: str, lease_ms: int
    ) -> list[TaskRecord]:
        """Take up to ``limit`` due tasks under a lease, so no other worker or node
        reads them meanwhile.

        One ``UPDATE … WHERE id IN (due and unleased) RETURNING``: on PostgreSQL the inner select
        takes ``FOR UPDATE SKIP LOCKED`` (concurrent claimers pass over each other's rows instead of
        waiting); on SQLite the statement runs under the database write lock, so it is a
        compare-and-set by itself.
        """
        due = task_sql.due_unleased(now_ms, limit)
        if self._engine.dialect.name == "postgresql":
            due = due.with_for_update(skip_locked=True)
        elif not await any_row(self._engine, due):
            return []
        async with self._engine.begin() as conn:
            rows = (await conn.execute(task_sql.claim(due, now_ms, owner, lease_ms))).all()
        return sorted((_record(r) for r in rows), key=lambda t: t.next_poll_at or 0)

    async def reschedule(
        self, task_id: str, expected: TaskStatus, next_poll_at: int, attempts: int
    ) -> bool:
        return await self.transition(
            task_id,
            expected,
            next_poll_at=next_poll_at,
            poll_attempts=attempts,
            lease_until=None,
            lease_owner=None,
        )

    async def _first(self, stmt: Select[Any]) -> TaskRecord | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(stmt)).first()
        return _record(row) if row else None

    async def _all(self, stmt: Select[Any]) -> list[TaskRecord]:
        async with self._engine.connect() as conn:
            return [_record(r) for r in (await conn.execute(stmt)).all()]


_TASK_PARAMS = tuple(f"t_{name}" for name in TASK_COLUMNS)
_task_values = attrgetter(*TASK_COLUMNS)


async def any_row(engine: AsyncEngine, query: Select[Any]) -> bool:
    """SQLite: look before claiming. An UPDATE takes the database's one write lock even when it
    matches nothing, so an idle worker claiming every second would make request writes wait behind
    it (a tail of tens of milliseconds under load); a read takes no lock."""
    async with engine.connect() as conn:
        return (await conn.execute(query.limit(1))).first() is not None
