"""The SQLite hot driver keeps the WAL bounded under steady writes: its checkpoints end with its own
writes held for a moment, so the next commit restarts the WAL instead of appending to it forever."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kling_gateway.storage.sqlite_hot import SqliteDriver

INSERT = "INSERT INTO t (id, v) VALUES (?, ?) RETURNING id"
ROUNDS, PER_ROUND = 150, 20


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Path]:
    path = tmp_path / "g.db"
    setup = sqlite3.connect(path, isolation_level=None)
    setup.execute("PRAGMA journal_mode=WAL")
    setup.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
    setup.execute("CREATE INDEX t_v ON t (v)")
    setup.close()
    yield path


async def steady_writes(d: SqliteDriver, wal: Path) -> int:
    """ROUNDS turns of PER_ROUND concurrent 2 KB inserts, a little apart; the largest WAL seen."""
    largest = 0
    for r in range(ROUNDS):
        ids = range(r * PER_ROUND, (r + 1) * PER_ROUND)
        assert (
            await asyncio.gather(*(d.execute(INSERT, [i, f"{i:08d}" * 256]) for i in ids)) == [1] * PER_ROUND
        )
        largest = max(largest, os.stat(wal).st_size)  # a local file: no need to leave the loop
        await asyncio.sleep(0.002)
    return largest


async def test_the_wal_stays_bounded_and_every_write_lands(db: Path) -> None:
    d = await SqliteDriver.open(str(db), checkpoint_every=0.02)
    try:
        largest = await steady_writes(d, Path(f"{db}-wal"))
    finally:
        await d.close()
    written = ROUNDS * PER_ROUND * 2048  # the rows alone, before index and page overheads: ~6 MB
    # never restarted, it reached ~32 MB here; restarted, ~1.3 MB
    assert largest < written / 2, f"WAL reached {largest} bytes"
    with sqlite3.connect(db) as conn:
        assert (
            conn.execute("SELECT count(*), count(DISTINCT id) FROM t").fetchone() == (ROUNDS * PER_ROUND,) * 2
        )


async def test_a_checkpoint_in_flight_when_closing_is_waited_for(db: Path) -> None:
    d = await SqliteDriver.open(str(db), checkpoint_every=0.0)
    writes = [asyncio.create_task(d.execute(INSERT, [i, "x"])) for i in range(50)]
    await asyncio.sleep(0)
    await d.close()  # queued writes applied, the checkpoint they started finished, nothing left running
    assert [w.result() for w in writes] == [1] * 50
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (50,)


async def test_two_writers_on_one_file_still_restart_it(db: Path) -> None:
    """Two processes' drivers (here two in one loop): each checkpoint holds only its own writes, so the
    other's land after it; past the limit a RESTART checkpoint brings the WAL back (13.7 MB → 1.1 MB)."""
    limit = 256 * 1024
    a = await SqliteDriver.open(str(db), checkpoint_every=0.02, wal_limit=limit)
    b = await SqliteDriver.open(str(db), checkpoint_every=0.02, wal_limit=limit)
    largest = 0
    try:
        for r in range(ROUNDS):
            writes = [
                d.execute(INSERT, [r * 40 + i * 2 + k, "v" * 2048])
                for i in range(20)
                for k, d in enumerate((a, b))
            ]
            assert await asyncio.gather(*writes) == [1] * 40
            largest = max(largest, os.stat(f"{db}-wal").st_size)
            await asyncio.sleep(0.002)
    finally:
        await a.close()
        await b.close()
    assert largest < ROUNDS * 40 * 2048 / 2, f"WAL reached {largest} bytes"  # ~12 MB written
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (ROUNDS * 40,)
