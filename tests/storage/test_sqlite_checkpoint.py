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


def restarts(wal: Path) -> int:
    """The WAL header's checkpoint sequence number: how many times a writer started the WAL over."""
    with wal.open("rb") as f:
        return int.from_bytes(f.read(16)[12:16], "big")


async def steady_writes(d: SqliteDriver, wal: Path, first_id: int = 0) -> tuple[int, int]:
    """ROUNDS turns of PER_ROUND concurrent 2 KB inserts, a little apart; the largest WAL seen, and
    how many times the WAL was started over meanwhile."""
    largest = 0
    for r in range(ROUNDS):
        ids = range(first_id + r * PER_ROUND, first_id + (r + 1) * PER_ROUND)
        assert (
            await asyncio.gather(*(d.execute(INSERT, [i, f"{i:08d}" * 256]) for i in ids))
            == [1] * PER_ROUND
        )
        largest = max(largest, os.stat(wal).st_size)  # a local file: no need to leave the loop
        await asyncio.sleep(0.002)
    return largest, restarts(wal)


async def test_the_wal_stays_bounded_and_every_write_lands(db: Path) -> None:
    d = await SqliteDriver.open(str(db), checkpoint_every=0.02)
    try:
        largest, started_over = await steady_writes(d, Path(f"{db}-wal"))
    finally:
        await d.close()
    written = ROUNDS * PER_ROUND * 2048  # the rows alone, before index and page overheads: ~6 MB
    # Never restarted, the WAL grows to several times ``written`` and its sequence number stays 0;
    # restarted, it stays below it even on a busy host, where checkpoints whose fsync is slow
    # restart it less often (the sizes seen are in docs/benchmarks.md).
    assert started_over >= 3, f"the WAL was started over {started_over} times"
    assert largest < written, f"WAL reached {largest} bytes"
    with sqlite3.connect(db) as conn:
        assert (
            conn.execute("SELECT count(*), count(DISTINCT id) FROM t").fetchone()
            == (ROUNDS * PER_ROUND,) * 2
        )


async def test_a_checkpoint_in_flight_when_closing_is_waited_for(db: Path) -> None:
    d = await SqliteDriver.open(str(db), checkpoint_every=0.0)
    writes = [asyncio.create_task(d.execute(INSERT, [i, "x"])) for i in range(50)]
    await asyncio.sleep(0)
    await (
        d.close()
    )  # queued writes applied, the checkpoint they started finished, nothing left running
    assert [w.result() for w in writes] == [1] * 50
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (50,)


async def test_commits_never_trim_the_wal_the_checkpoint_cuts_an_oversized_one(db: Path) -> None:
    """A commit that restarts the WAL leaves the file as large as it was (trimming it on the loop,
    then allocating its blocks again, stalled commits); only a checkpoint cuts a WAL that grew past
    ``wal_keep_bytes``."""
    wal = Path(f"{db}-wal")
    keep = await SqliteDriver.open(str(db), checkpoint_every=0.02, wal_keep_bytes=1 << 40)
    try:
        await steady_writes(keep, wal)
        largest = os.stat(wal).st_size
        for i in range(
            5
        ):  # more turns, each restarting the WAL after the checkpoint held its writes
            await keep.execute(INSERT, [100_000 + i, "x"])
            await asyncio.sleep(0.05)
        assert restarts(wal) >= 3
        assert os.stat(wal).st_size == largest  # restarted, not trimmed
    finally:
        await keep.close()
    cut = await SqliteDriver.open(str(db), checkpoint_every=0.02, wal_keep_bytes=64 * 1024)
    try:
        await steady_writes(cut, wal, first_id=1_000_000)
        for i in range(5):
            await cut.execute(INSERT, [200_000 + i, "x"])
            await asyncio.sleep(0.05)
        assert (
            os.stat(wal).st_size < 256 * 1024
        )  # cut back by a TRUNCATE checkpoint, regrown a little
    finally:
        await cut.close()
