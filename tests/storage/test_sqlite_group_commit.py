"""The SQLite hot-path driver's group commit: writes made in the same turn of the loop share one
transaction, yet each succeeds, is refused or fails alone, and each caller sees its own outcome."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kling_gateway.storage import sqlite_hot
from kling_gateway.storage.sqlite_hot import SqliteDriver
from kling_gateway.storage.steps import Step, UniqueViolation

INSERT = "INSERT INTO t (id, v) VALUES (?, ?) RETURNING id"
DEBIT = "UPDATE acct SET bal = bal - ? WHERE id = 1 AND bal >= ? RETURNING id"


@pytest.fixture
async def driver(tmp_path: Path) -> AsyncIterator[tuple[SqliteDriver, Path]]:
    path = tmp_path / "g.db"
    setup = sqlite3.connect(path, isolation_level=None)
    setup.execute("PRAGMA journal_mode=WAL")
    setup.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
    setup.execute("CREATE TABLE acct (id INTEGER PRIMARY KEY, bal INTEGER NOT NULL)")
    setup.execute("INSERT INTO acct VALUES (1, 10)")
    setup.close()
    d = await SqliteDriver.open(str(path))
    yield d, path
    await d.close()


def rows(path: Path) -> list[tuple[int, str]]:
    with sqlite3.connect(path) as conn:
        return list(conn.execute("SELECT id, v FROM t ORDER BY id"))


def balance(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT bal FROM acct").fetchone()[0])


def paid(n: int, amount: int) -> list[Step]:
    """A reserve-shaped write: debit (must match), then the row."""
    return [Step(DEBIT, [amount, amount], require=True), Step(INSERT, [n, f"paid {n}"])]


async def test_one_turn_one_transaction_each_write_alone(driver: tuple[SqliteDriver, Path]) -> None:
    d, path = driver
    results = await asyncio.gather(
        d.execute(INSERT, [1, "a"]),
        d.run_tx(paid(2, 6)),
        d.run_tx(paid(3, 6)),  # refused: the balance is 4 by now; its row must not exist
        d.execute(INSERT, [1, "dup"]),  # unique violation: fails alone
        d.run_tx(paid(4, 4)),
        return_exceptions=True,
    )
    assert list(results[:3]) == [1, None, 0]  # gather's stubs say tuple; it returns a list
    assert isinstance(results[3], UniqueViolation)
    assert results[4] is None
    assert rows(path) == [(1, "a"), (2, "paid 2"), (4, "paid 4")]
    assert balance(path) == 0


async def test_a_lone_write_commits_or_rolls_back_like_its_own_transaction(
    driver: tuple[SqliteDriver, Path],
) -> None:
    d, path = driver
    assert await d.run_tx(paid(1, 11)) == 0
    assert rows(path) == [] and balance(path) == 10
    with pytest.raises(UniqueViolation):
        await d.run_tx([Step(INSERT, [5, "x"]), Step(INSERT, [5, "y"])])
    assert rows(path) == []
    assert await d.fetchone("SELECT count(*) FROM t", []) == (0,)


async def test_writes_wait_for_a_foreign_writer_without_blocking_the_loop(
    driver: tuple[SqliteDriver, Path],
) -> None:
    d, path = driver
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    pending = [asyncio.create_task(d.execute(INSERT, [i, "w"])) for i in range(5)]
    ticks = 0
    for _ in range(20):
        await asyncio.sleep(0.005)
        ticks += 1
    assert not any(t.done() for t in pending) and ticks == 20
    blocker.execute("COMMIT")
    blocker.close()
    assert await asyncio.gather(*pending) == [1] * 5
    assert len(rows(path)) == 5


async def test_a_lock_held_past_the_busy_timeout_fails_the_waiting_writes(
    driver: tuple[SqliteDriver, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    d, path = driver
    monkeypatch.setattr(sqlite_hot, "BUSY_TIMEOUT_S", 0.05)
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            await d.execute(INSERT, [1, "late"])
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert await d.execute(INSERT, [2, "after"]) == 1  # the driver recovers once the lock is free


async def test_a_cancelled_write_is_not_applied(driver: tuple[SqliteDriver, Path]) -> None:
    d, path = driver
    doomed = asyncio.create_task(d.execute(INSERT, [1, "never"]))
    await asyncio.sleep(0)  # queued, not yet flushed
    doomed.cancel()
    kept = await d.execute(INSERT, [2, "kept"])
    assert kept == 1 and rows(path) == [(2, "kept")]


async def test_a_broken_write_fails_alone(driver: tuple[SqliteDriver, Path]) -> None:
    d, path = driver
    ok, broken = await asyncio.gather(
        d.execute(INSERT, [1, "ok"]), d.execute(INSERT, [2]), return_exceptions=True
    )
    assert ok == 1 and isinstance(broken, sqlite3.ProgrammingError)
    assert rows(path) == [(1, "ok")]


async def test_a_one_statement_write_is_undone_whole_without_a_savepoint(
    driver: tuple[SqliteDriver, Path],
) -> None:
    """One-statement writes in a shared commit run without a savepoint: SQLite's statement atomicity
    must undo a statement that failed half-way (its first row inserted, its second refused) and
    nothing else."""
    d, path = driver
    two_rows = "INSERT INTO t (id, v) VALUES (10, 'first'), (1, 'clash') RETURNING id"
    results = await asyncio.gather(
        d.execute(INSERT, [1, "a"]),
        d.execute(two_rows, []),
        d.run_tx(
            [Step(DEBIT, [50, 50], require=True)]
        ),  # refused: changes nothing, shares the commit
        d.run_tx([Step(INSERT, [3, "skipped"], only_if_prev=True)]),  # no previous step: not run
        d.execute(INSERT, [2, "b"]),
        return_exceptions=True,
    )
    assert results[0] == 1 and isinstance(results[1], UniqueViolation)
    assert list(results[2:]) == [0, None, 1]
    assert rows(path) == [(1, "a"), (2, "b")]
    assert balance(path) == 10


async def test_a_statement_that_rolls_back_the_transaction_fails_the_whole_batch(
    driver: tuple[SqliteDriver, Path],
) -> None:
    """Some errors end the transaction itself (I/O, disk full; here a trigger's RAISE(ROLLBACK)):
    the batch-mates' writes were undone with it, so each of them must hear of it, and the driver
    goes on."""
    d, path = driver
    with sqlite3.connect(path, isolation_level=None) as setup:
        setup.execute(
            "CREATE TRIGGER no_zero BEFORE INSERT ON t WHEN NEW.id = 0 "
            "BEGIN SELECT RAISE(ROLLBACK, 'zero refused'); END"
        )
    results = await asyncio.gather(
        d.execute(INSERT, [1, "a"]), d.execute(INSERT, [0, "boom"]), return_exceptions=True
    )
    assert all(isinstance(r, sqlite3.IntegrityError) for r in results)
    assert rows(path) == []
    assert await d.execute(INSERT, [2, "after"]) == 1
    assert rows(path) == [(2, "after")]


async def test_savepoint_journals_stay_in_memory(driver: tuple[SqliteDriver, Path]) -> None:
    """Each write of a shared commit journals the pages it changes for its savepoint; past 64 KiB
    SQLite spills that journal to a temporary file unless temp_store is MEMORY. 2 = MEMORY."""
    d, _ = driver
    assert await d.fetchone("PRAGMA temp_store", []) == (2,)
