"""Every statement on the ``tasks`` table that the task store runs: one home for the tasks SQL.

The per-request ones (insert, get, find, compare-and-set, re-point) are compiled once for the
driver's dialect and run on the raw driver (hotpath.py); scans and admin listings are SQLAlchemy
statements the store runs on the engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from operator import attrgetter
from typing import Any

import orjson
from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Integer,
    Select,
    Text,
    and_,
    bindparam,
    case,
    func,
    insert,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.sql.dml import Update
from sqlalchemy.sql.expression import ClauseElement

from ..domain.task import ACTIVE, TaskStatus
from .create_pg import cas_announced
from .hotpath import Compiled, HotPath
from .tables import ACTIVE_PREDICATE, tasks, webhook_deliveries

TASK_COLUMNS = tuple(c.name for c in tasks.c)
_ACTIVE = [s.value for s in ACTIVE]
_HIDDEN = TaskStatus.REJECTED.value  # a rejected row's id never reached the client


def _find() -> Select[Any]:
    """By public id first, then by the user's own ``external_task_id`` (Kling's one path slot)."""
    ident: BindParameter[str] = bindparam("ident")
    return (
        select(tasks)
        .where(
            tasks.c.user_id == bindparam("user_id"),
            or_(tasks.c.id == ident, tasks.c.external_task_id == ident),
            tasks.c.status != _HIDDEN,
        )
        .order_by(case((tasks.c.id == ident, 0), else_=1))
        .limit(1)
    )


def _repoint() -> ClauseElement:
    """Only a queued row never submitted moves, and only from the account it is on
    (compare-and-set); ``IS NOT DISTINCT FROM`` so a row on no account yet matches
    ``from_account`` None."""
    return (
        update(tasks)
        .where(
            tasks.c.id == bindparam("id"),
            tasks.c.status == TaskStatus.QUEUED.value,
            tasks.c.upstream_task_id.is_(None),
            tasks.c.upstream_account_id.is_not_distinct_from(bindparam("from_account")),
        )
        .values(upstream_account_id=bindparam("to_account"))
    )


def webhook_once(dialect_name: str) -> ClauseElement:
    """The delivery row of a status change, ignored when (task, status) has one: a
    change is announced once, whoever moved the task (the unique index decides, not a
    read before the write)."""
    ins = pg_insert if dialect_name == "postgresql" else sqlite_insert
    return ins(webhook_deliveries).on_conflict_do_nothing()


class TaskStatements:
    """The per-request statements, compiled for one driver."""

    __slots__ = (
        "_announced",
        "_cas",
        "_hot",
        "event",
        "find",
        "get",
        "insert",
        "insert_row",
        "repoint",
    )

    def __init__(self, hot: HotPath) -> None:
        self._hot = hot
        self.insert = hot.compile(insert(tasks))
        # A row's insert parameters read straight off the record in the statement's order: one C
        # call instead of a dict of 30 columns and a list built from it.
        self.insert_row = attrgetter(*self.insert.names)
        self.get = hot.compile(select(tasks).where(tasks.c.id == bindparam("id")))
        self.find = hot.compile(_find())
        self.repoint = hot.compile(_repoint())
        self.event = hot.compile(webhook_once(hot.dialect.name))
        self._cas: dict[tuple[str, ...], Compiled] = {}
        self._announced: dict[tuple[str, ...], Compiled] = {}

    def cas(self, task_id: str, expected: str, values: Mapping[str, Any]) -> tuple[str, list[Any]]:
        """``UPDATE tasks SET … WHERE id = :id AND status = :expected``, compiled
        once per column set."""
        key = tuple(sorted(values))
        compiled = self._cas.get(key)
        if compiled is None:
            compiled = self._cas[key] = self._hot.compile(_cas(key))
        return compiled.sql, compiled.args(_cas_params(task_id, expected, values))

    def cas_announced(
        self, task_id: str, expected: str, values: Mapping[str, Any], event: Mapping[str, Any]
    ) -> tuple[str, list[Any]]:
        """PostgreSQL: the compare-and-set and its webhook event in one statement (create_pg.py)."""
        key = tuple(sorted(values))
        compiled = self._announced.get(key)
        if compiled is None:
            compiled = self._announced[key] = self._hot.compile(cas_announced(_cas(key)))
        params = _cas_params(task_id, expected, values)
        params.update((f"e_{name}", value) for name, value in event.items())
        return compiled.sql, compiled.args(params)


def _cas(key: tuple[str, ...]) -> Update:
    values: dict[str, Any] = {name: bindparam(f"v_{name}") for name in key}
    if HISTORY in values:
        values[HISTORY] = _appended()
    return (
        update(tasks)
        .where(tasks.c.id == bindparam("w_id"), tasks.c.status == bindparam("w_status"))
        .values(values)
    )


HISTORY = "status_history"


def _appended() -> ColumnElement[str]:
    """``status_history`` with the entry ``v_status_history`` (a JSON object's text) appended:
    the list's text without its ``]``, a comma, the entry, ``]``. In the compare-and-set itself,
    so an entry is written exactly when the status changes, on SQLite and PostgreSQL alike; a row
    from before the column (NULL) starts its list here."""
    h = tasks.c.status_history
    head = case(
        (h.is_(None), literal_column("'['", Text)),
        else_=func.substr(h, 1, func.length(h) - 1).concat(literal_column("','", Text)),
    )
    entry: BindParameter[str] = bindparam(f"v_{HISTORY}", type_=Text)
    return head.concat(entry).concat(literal_column("']'", Text))


def history_entry(status: str, at_ms: int | None, by: str) -> str:
    """One entry's JSON text."""
    return orjson.dumps({"status": status, "at": at_ms, "by": by}).decode()


def _cas_params(task_id: str, expected: str, values: Mapping[str, Any]) -> dict[str, Any]:
    params = {f"v_{k}": v for k, v in values.items()}
    params["w_id"] = task_id
    params["w_status"] = expected
    return params


# ------------------------------------------------------------------------------- engine statements
# Unfinished tasks per account. The status filter is the partial index's own predicate text, so
# SQLite counts from that covering index instead of walking every task an account ever had (a bound
# ``IN (?, ?, ?)`` cannot be proven to imply the predicate).
IN_FLIGHT = (
    select(tasks.c.upstream_account_id, func.count())
    .where(literal_column(ACTIVE_PREDICATE), tasks.c.upstream_account_id.is_not(None))
    .group_by(tasks.c.upstream_account_id)
)


def by_external_id(user_id: int, external_task_id: str) -> Select[Any]:
    return select(tasks).where(
        tasks.c.user_id == user_id, tasks.c.external_task_id == external_task_id
    )


def by_external_id_of_any_user(external_task_id: str, limit: int) -> Select[Any]:
    """An operator's look-up without a user: no index leads with the id, so a scan
    (never per request)."""
    return (
        select(tasks)
        .where(tasks.c.external_task_id == external_task_id)
        .order_by(tasks.c.user_id)
        .limit(limit)
    )


def for_user(user_id: int, offset: int, limit: int) -> Select[Any]:
    return (
        select(tasks)
        .where(tasks.c.user_id == user_id, tasks.c.status != _HIDDEN)
        .order_by(tasks.c.id.desc())
        .offset(offset)
        .limit(limit)
    )


def listing(limit: int, status: str | None, user_id: int | None) -> Select[Any]:
    stmt = select(tasks).order_by(tasks.c.id.desc()).limit(limit)
    if status:
        stmt = stmt.where(tasks.c.status == status)
    if user_id is not None:
        stmt = stmt.where(tasks.c.user_id == user_id)
    return stmt


# In-flight counts for the limits (limits.py): the status filter is the partial indexes' own
# predicate text, never bound parameters, so the planner can prove the index applies.
def _active_count(*conds: ColumnElement[bool]) -> Any:
    return (
        select(func.count())
        .select_from(tasks)
        .where(*conds, literal_column(ACTIVE_PREDICATE))
        .scalar_subquery()
    )


def active_for_user() -> Any:
    return _active_count(tasks.c.user_id == bindparam("user_id", type_=Integer))


def active_for_key() -> Any:
    return _active_count(tasks.c.key_id == bindparam("key_id", type_=Integer))


def active_on_upstream() -> Any:
    return _active_count(
        tasks.c.upstream_account_id == bindparam("account_id", type_=Integer),
        tasks.c.upstream_model == bindparam("model"),
    )


def due(now_ms: int, limit: int) -> Select[Any]:
    return (
        select(tasks)
        .where(tasks.c.next_poll_at <= now_ms, tasks.c.status.in_(_ACTIVE))
        .order_by(tasks.c.next_poll_at)
        .limit(limit)
    )


def due_unleased(now_ms: int, limit: int) -> Select[Any]:
    return (
        select(tasks.c.id)
        .where(
            tasks.c.next_poll_at <= now_ms,
            tasks.c.status.in_(_ACTIVE),
            or_(tasks.c.lease_until.is_(None), tasks.c.lease_until < now_ms),
        )
        .order_by(tasks.c.next_poll_at)
        .limit(limit)
    )


def claim(due_ids: Select[Any], now_ms: int, owner: str, lease_ms: int) -> Any:
    return (
        update(tasks)
        .where(tasks.c.id.in_(due_ids.scalar_subquery()))
        .values(lease_until=now_ms + lease_ms, lease_owner=owner)
        .returning(*tasks.c)
    )


# Mirroring (mirror/rows.py): a succeeded task is pending while ``origin_result_json`` is NULL. The
# status is inlined, not bound: the partial index on that predicate is only usable when the planner
# can see the literal (SQLite never looks into parameters; PostgreSQL's generic plans don't either).
_SUCCEED: ColumnElement[str] = literal_column(f"'{TaskStatus.SUCCEED.value}'")


def _mirror_pending() -> ColumnElement[bool]:
    return and_(
        tasks.c.status == _SUCCEED,
        tasks.c.origin_result_json.is_(None),
        tasks.c.result_json.is_not(None),
    )


def _unleased(now_ms: int) -> ColumnElement[bool]:
    return or_(tasks.c.lease_until.is_(None), tasks.c.lease_until < now_ms)


def mirror_pending(now_ms: int, limit: int) -> Select[Any]:
    pending = select(tasks.c.id).where(_mirror_pending(), _unleased(now_ms))
    return pending.order_by(tasks.c.id).limit(limit)


def mirror_claim(ids: Select[Any], now_ms: int, owner: str, lease_ms: int) -> Any:
    """The outer WHERE repeats the predicate: a row another claimer took in between is not taken."""
    return (
        update(tasks)
        .where(tasks.c.id.in_(ids.scalar_subquery()), _mirror_pending(), _unleased(now_ms))
        .values(lease_until=now_ms + lease_ms, lease_owner=owner)
        .returning(*tasks.c)
    )


def mirror_settle(task_id: str, **values: Any) -> Any:
    """A write to a pending row only (compare-and-set on ``origin_result_json IS NULL``)."""
    return update(tasks).where(tasks.c.id == task_id, _mirror_pending()).values(**values)
