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
