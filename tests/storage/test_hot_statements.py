"""The request path's statements as SQLite plans them: no temporary b-trees.

A 3-value ``IN`` list in a partial index's predicate, and a RETURNING clause, each make SQLite open,
fill and drop a temporary b-tree (``OpenEphemeral``) on every run of the statement. Both were on
every create (three on the insert, six on the compare-and-set to 'submitted', one per RETURNING);
migration 0007 and the row counts the drivers now read instead of RETURNING took them out. This
reads the plans of the statements a create and a settle run, on a database at head."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from sqlalchemy.dialects import sqlite as sqlite_dialect

from kling_gateway.domain.task import TaskStatus
from kling_gateway.storage.db import make_engine, upgrade
from kling_gateway.storage.hotpath import HotPath
from kling_gateway.storage.money import Close, Reserve
from kling_gateway.storage.steps import Step
from kling_gateway.storage.task_sql import TASK_COLUMNS, TaskStatements
from kling_gateway.storage.tasks import TaskStore


class _Recorder:
    """A driver that keeps the SQL it is given (and says every write matched one row)."""

    def __init__(self) -> None:
        self.sql: list[str] = []

    async def execute(self, sql: str, args: Sequence[Any]) -> int:
        self.sql.append(sql)
        return 1

    async def fetchone(self, sql: str, args: Sequence[Any]) -> Sequence[Any] | None:
        self.sql.append(sql)
        return None

    async def run_tx(self, steps: Sequence[Step]) -> int | None:
        self.sql.extend(step.sql for step in steps)
        return None

    async def close(self) -> None:
        return None


async def _create_and_settle_sql(hot: HotPath, driver: _Recorder, db: Path) -> list[str]:
    engine = make_engine(f"sqlite+aiosqlite:///{db}")  # the scans' engine: unused here
    store = TaskStore(engine, hot)
    row: Any = SimpleNamespace(**dict.fromkeys(TASK_COLUMNS))
    row.id = "t"
    reserve = Reserve(user_id=1, key_id=1, amount=5, public_model="m", now_ms=0)
    await store.insert(row, reserve=reserve)
    await store.transition(
        "t",
        TaskStatus.QUEUED,
        status="submitted",
        upstream_task_id="u",
        upstream_account_id=1,
        updated_at=1,
        next_poll_at=2,
        lease_until=None,
        lease_owner=None,
    )
    settle = Close(
        user_id=1,
        key_id=1,
        task_id="t",
        back=1,
        charged=4,
        reason="settle",
        public_model="m",
        now_ms=3,
    )
    await store.transition(
        "t", TaskStatus.PROCESSING, close=settle, status="succeed", next_poll_at=None
    )
    await engine.dispose()
    return driver.sql


async def test_create_and_settle_statements_open_no_temporary_btree(tmp_path: Path) -> None:
    db = tmp_path / "plan.db"
    engine = make_engine(f"sqlite+aiosqlite:///{db}")
    await upgrade(engine)
    await engine.dispose()
    driver = _Recorder()
    statements = await _create_and_settle_sql(HotPath(driver, sqlite_dialect.dialect()), driver, db)
    assert (
        len(statements) >= 8
    )  # debit user, debit key, insert, ledger, CAS, CAS + ledger/credit/uncharge
    conn = sqlite3.connect(db)
    try:
        for sql in statements:
            opcodes = [row[1] for row in conn.execute("EXPLAIN " + sql, [None] * sql.count("?"))]
            assert "OpenEphemeral" not in opcodes, sql
    finally:
        conn.close()


async def test_the_old_predicate_did_open_them(tmp_path: Path) -> None:
    """The check above can fail: the same insert against the indexes as 0005 made them opens
    three."""
    db = tmp_path / "old.db"
    engine = make_engine(f"sqlite+aiosqlite:///{db}")
    await upgrade(engine, "0006")
    await engine.dispose()
    _add_history_column(db)
    sql = TaskStatements(HotPath(_Recorder(), sqlite_dialect.dialect())).insert.sql
    conn = sqlite3.connect(db)
    try:
        opcodes = [row[1] for row in conn.execute("EXPLAIN " + sql, [None] * sql.count("?"))]
    finally:
        conn.close()
    assert opcodes.count("OpenEphemeral") == 3


async def test_engine_connections_keep_temporary_data_in_memory(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'mem.db'}")
    try:
        async with engine.connect() as conn:
            value = (await conn.exec_driver_sql("PRAGMA temp_store")).scalar()
    finally:
        await engine.dispose()
    assert value == 2  # MEMORY: savepoint journals never spill to files (storage/sqlite_hot.py)


def _add_history_column(db: Path) -> None:
    """An older schema with today's insert: migration 0011's column (unindexed) added by hand."""
    conn = sqlite3.connect(db)
    try:
        conn.execute("ALTER TABLE tasks ADD COLUMN status_history TEXT")
    finally:
        conn.close()


def _index_writes(db: Path, sql: str) -> int:
    """Index entries one run of ``sql`` writes (``IdxInsert``; the table row itself is an
    ``Insert``)."""
    conn = sqlite3.connect(db)
    try:
        return [row[1] for row in conn.execute("EXPLAIN " + sql, [None] * sql.count("?"))].count(
            "IdxInsert"
        )
    finally:
        conn.close()


async def test_a_task_insert_writes_only_the_indexes_something_reads(tmp_path: Path) -> None:
    """Eight in the plan: the primary key, the unique external id, the user's list, the poll queue,
    the mirror queue (partial: skipped for a queued row) and the three in-flight counts. At 0007 it
    was nine: ix_tasks_upstream too, which no query read (migration 0008 dropped it)."""
    insert_sql = TaskStatements(HotPath(_Recorder(), sqlite_dialect.dialect())).insert.sql
    counts = {}
    for revision in ("0007", "head"):
        db = tmp_path / f"{revision}.db"
        engine = make_engine(f"sqlite+aiosqlite:///{db}")
        await upgrade(engine, revision)
        await engine.dispose()
        if revision != "head":
            _add_history_column(db)
        counts[revision] = _index_writes(db, insert_sql)
    assert counts == {"0007": 9, "head": 8}
