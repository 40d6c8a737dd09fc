"""The checkpoint thread: below the loop's priority, and passes repeated until few frames are
left."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sqlite3
import sys
import threading
from pathlib import Path

import pytest

from kling_gateway.storage import sqlite_checkpoint
from kling_gateway.storage.sqlite_checkpoint import Checkpointer


def make_db(path: Path) -> None:
    setup = sqlite3.connect(path, isolation_level=None)
    setup.execute("PRAGMA journal_mode=WAL")
    setup.execute("PRAGMA wal_autocheckpoint=0")
    setup.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
    setup.close()


def write(path: Path, first: int, n: int) -> None:
    with sqlite3.connect(path, isolation_level=None) as conn:
        conn.execute("PRAGMA wal_autocheckpoint=0")
        for i in range(first, first + n):
            conn.execute("INSERT INTO t VALUES (?, ?)", (i, "x" * 3000))


def rows_in_database_file(path: Path, tmp: Path) -> int:
    """Rows the database file holds by itself, without its WAL: what checkpoints have copied into
    it."""
    alone = tmp / "alone.db"
    shutil.copyfile(path, alone)
    with contextlib.closing(sqlite3.connect(alone)) as conn:
        return int(conn.execute("SELECT count(*) FROM t").fetchone()[0])


@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="per-thread nice is a Linux feature"
)
async def test_the_checkpoint_thread_runs_niced(tmp_path: Path) -> None:
    db = tmp_path / "n.db"
    make_db(db)
    c = Checkpointer(str(db), 1000)
    try:
        await c.catch_up()
        seen: list[int] = []

        def look() -> None:
            seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))

        await asyncio.get_running_loop().run_in_executor(c._pool, look)
        assert seen == [os.getpriority(os.PRIO_PROCESS, 0) + sqlite_checkpoint.NICE] or seen == [19]
    finally:
        await c.close()


async def test_catch_up_copies_everything_written_and_reports_the_wal_size(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    make_db(db)
    write(db, 0, 300)
    c = Checkpointer(str(db), 1000)
    try:
        size = await c.catch_up()
    finally:
        await c.close()
    assert rows_in_database_file(db, tmp_path) == 300  # every frame is in the database file
    assert size == os.stat(f"{db}-wal").st_size > 300 * 3000


@pytest.mark.parametrize(
    ("took", "passes"),
    [
        ([0.001], 1),  # quick at once: little was appended meanwhile
        ([0.050, 0.010, 0.002, 0.050], 3),  # slow passes repeat until a quick one
        ([0.050] * 6, sqlite_checkpoint.MAX_UNHELD_PASSES),  # a writer that never lets up: capped
    ],
)
async def test_passes_repeat_until_one_is_quick(
    tmp_path: Path, took: list[float], passes: int
) -> None:
    db = tmp_path / "r.db"
    make_db(db)
    c = Checkpointer(str(db), 1000)
    ran: list[float] = []

    def timed() -> float:
        ran.append(took[len(ran)])
        return ran[-1]

    c._pass = timed  # type: ignore[method-assign]
    try:
        await c.catch_up()
    finally:
        await c.close()
    assert len(ran) == passes


async def test_no_wal_file_is_a_wal_of_nothing(tmp_path: Path) -> None:
    db = tmp_path / "none.db"
    sqlite3.connect(db).close()  # rollback-journal database: no -wal file at all
    c = Checkpointer(str(db), 1000)
    try:
        assert await c.catch_up() == 0
    finally:
        await c.close()
