"""The SQLite hot-path driver: statements on the event loop, writes group-committed.

Measurements behind each choice: docs/benchmarks.md, "Why the code is shaped this way".

**On the loop.** A small indexed write costs less than a hop to aiosqlite's thread, so the hot
path's statements run on the loop, on a connection that never waits for a lock
(``busy_timeout=0``).

**Group commit.** A commit rewrites every page its transaction dirtied into the WAL, so writes are
queued and applied at the next turn of the loop, all that arrived meanwhile in **one**
``BEGIN IMMEDIATE … COMMIT``, each inside its own ``SAVEPOINT``: one write's refusal (a
compare-and-set that matched nothing, a unique violation) rolls back that write alone. A caller's
``await`` returns only after the COMMIT that made its write durable, so it sees exactly what a
transaction of its own would have given it; a batch's writes apply in the order they were made.

**Contention.** When another connection holds the write lock, ``BEGIN IMMEDIATE`` fails at once;
the batch is retried from a timer with growing pauses — never blocking the loop — and gives up with
SQLite's "database is locked" after ``BUSY_TIMEOUT_S``, the engine's own busy timeout. Contended
writes are not sent to aiosqlite: its slow transactions kept the lock busy and pulled every later
write onto the slow path. Reads do not queue; the rare read that meets a lock waits on the aiosqlite
connection, off the loop.

**Savepoint journals in memory** (``temp_store=MEMORY``): a batch's sub-journal outgrows SQLite's
in-memory limit, and its spill to a temporary file cost more writes than the WAL itself.

**Checkpoints.** The hot connection never checkpoints by itself (a checkpoint syncs files: not on
the loop). Every ``checkpoint_every`` seconds with writes, passive checkpoints run on a niced thread
(sqlite_checkpoint.py), then a last one on the aiosqlite connection's thread with this driver's
writes held while it copies what was appended meanwhile. Without that hold the WAL never restarts
under steady load and grows without bound; with it, the next commit reuses the WAL from its start.

Commits never trim the WAL (no ``journal_size_limit`` here): a truncate on the loop made the next
commits wait for ext4 to allocate the blocks again. A WAL that a burst grew past
``wal_keep_bytes`` is cut back by the held checkpoint instead (``TRUNCATE``), off the loop. Another
process writing the same file steadily (a second ``serve`` worker) is not held, so the WAL restarts
only when it pauses: several HTTP processes belong on PostgreSQL (docs/deployment.md).
``kling-gateway worker`` processes write seldom.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Sequence
from typing import Any

import aiosqlite

from .sqlite_checkpoint import Checkpointer
from .steps import Step, UniqueViolation, should_run

BUSY_TIMEOUT_S = 10.0
CHECKPOINT_EVERY_S = 1.0
WAL_KEEP_BYTES = 256 * 1024 * 1024

log = logging.getLogger(__name__)
_FIRST_PAUSE_S = 0.0005
_MAX_PAUSE_S = 0.02


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc)
    return "locked" in text or "busy" in text


class _Write:
    """One queued write: its steps, and whether the caller wants a row count (a bare statement) or
    the transaction verdict (None, or the index of the ``require`` step that matched nothing)."""

    __slots__ = ("count", "future", "steps")

    def __init__(self, steps: Sequence[Step], count: bool, future: asyncio.Future[Any]) -> None:
        self.steps = steps
        self.count = count
        self.future = future


class _Refused(Exception):
    def __init__(self, index: int) -> None:
        self.index = index


class SqliteDriver:
    def __init__(
        self,
        conn: sqlite3.Connection,
        fallback: aiosqlite.Connection,
        checkpointer: Checkpointer,
        checkpoint_every: float,
        wal_keep_bytes: int,
    ) -> None:
        # The loop the driver was opened on, kept: asyncio.get_running_loop() makes a
        # getpid() system call on every call in CPython 3.11 (its fork check), and
        # the driver would call it for every write.
        self._loop = asyncio.get_running_loop()
        self._conn = conn
        self._fallback = fallback
        # Reads that meet a lock, and checkpoints, use the fallback connection: one user at a time.
        self._fallback_lock = asyncio.Lock()
        self._queue: list[_Write] = []
        self._flush_scheduled = False
        self._busy_since: float | None = None
        self._pause = _FIRST_PAUSE_S
        self._checkpointer = checkpointer
        self._checkpoint_every = checkpoint_every
        self._wal_keep_bytes = wal_keep_bytes
        self._next_checkpoint = 0.0
        self._checkpointing: asyncio.Task[None] | None = None
        self._held = False  # writes wait while a checkpoint copies the WAL's last frames
        self._closing = False

    @classmethod
    async def open(
        cls,
        path: str,
        *,
        checkpoint_every: float = CHECKPOINT_EVERY_S,
        wal_keep_bytes: int = WAL_KEEP_BYTES,
    ) -> SqliteDriver:
        conn = sqlite3.connect(path, isolation_level=None)
        for pragma in (
            "journal_mode=WAL",
            "synchronous=NORMAL",
            "foreign_keys=ON",
            "temp_store=MEMORY",
        ):
            conn.execute(f"PRAGMA {pragma}")
        conn.execute("PRAGMA busy_timeout=0")
        conn.execute("PRAGMA wal_autocheckpoint=0")
        # Commits never trim the WAL (a truncate on the loop makes the next commits wait for ext4
        # to allocate its blocks again); the checkpoint trims an oversized WAL, off the loop.
        conn.execute("PRAGMA journal_size_limit=-1")
        busy_ms = int(BUSY_TIMEOUT_S * 1000)
        fallback = await aiosqlite.connect(path, isolation_level=None)
        for pragma in ("synchronous=NORMAL", "foreign_keys=ON", f"busy_timeout={busy_ms}"):
            await fallback.execute(f"PRAGMA {pragma}")
        return cls(conn, fallback, Checkpointer(path, busy_ms), checkpoint_every, wal_keep_bytes)

    # --------------------------------------------------------------------------------------- writes
    async def execute(self, sql: str, args: Sequence[Any]) -> int:
        """A write on its own; returns the rows it changed."""
        result: int = await self._enqueue([Step(sql, args)], count=True)
        return result

    async def run_tx(self, steps: Sequence[Step]) -> int | None:
        result: int | None = await self._enqueue(steps, count=False)
        return result

    def _enqueue(self, steps: Sequence[Step], *, count: bool) -> asyncio.Future[Any]:
        loop = self._loop
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.append(_Write(steps, count, future))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush)
        return future

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._held:
            return  # the checkpoint flushes the queue when it lets go
        # a cancelled caller wrote nothing
        batch = [w for w in self._queue if not w.future.cancelled()]
        self._queue = []
        if not batch:
            return
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if _is_busy(exc):
                self._retry_later(batch, exc)
            else:
                _fail(batch, exc)
            return
        self._busy_since, self._pause = None, _FIRST_PAUSE_S
        shared = len(batch) > 1
        outcomes: list[tuple[bool, Any]] = []
        try:
            for write in batch:
                outcomes.append(self._apply(conn, write, shared))
            ok, value = outcomes[0]
            # A lone write that was refused or failed has nothing to commit (its
            # savepoint would be the whole transaction); in a shared one each such
            # write was already rolled back to its savepoint.
            conn.execute(
                "ROLLBACK" if not shared and (not ok or isinstance(value, _Refused)) else "COMMIT"
            )
        # the transaction itself failed (I/O, disk full): nothing was written
        except Exception as exc:
            if conn.in_transaction:
                # every waiter must hear of it, whatever happens
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            _fail(batch, exc)
            return
        _settle(batch, outcomes)
        if self._checkpointing is None and not self._closing:
            now = self._loop.time()
            if now >= self._next_checkpoint:
                self._next_checkpoint = now + self._checkpoint_every
                self._checkpointing = self._loop.create_task(self._checkpoint_in_background())

    @staticmethod
    def _apply(conn: sqlite3.Connection, write: _Write, shared: bool) -> tuple[bool, Any]:
        """Run one write's steps; (True, result) or (False, exception). In a shared transaction a
        refused or failed write is rolled back to its savepoint; alone, the caller rolls back.

        A one-statement write needs no savepoint: SQLite undoes a failed statement by itself and
        keeps the transaction (statement atomicity), and a refused one changed nothing. The errors
        that instead roll back the whole transaction (I/O, disk full) leave none open, and then the
        batch fails as one. Two statements fewer for every compare-and-set in a shared commit."""
        steps = write.steps
        savepoint = shared and len(steps) > 1
        if savepoint:
            conn.execute("SAVEPOINT w")
        results: list[int] = []
        try:
            for i, step in enumerate(steps):
                if not should_run(results, steps, i):
                    results.append(0)
                    continue
                n = _changed(conn.execute(step.sql, step.args))
                results.append(n)
                if step.require and n == 0:
                    raise _Refused(i)
        except Exception as exc:  # this write's own failure: its batch-mates must not share it
            if savepoint:
                conn.execute("ROLLBACK TO w")
                conn.execute("RELEASE w")
            elif not conn.in_transaction:
                # SQLite rolled the whole transaction back: every write of the batch is undone
                raise
            if isinstance(exc, _Refused):
                return True, exc
            error = UniqueViolation(str(exc)) if isinstance(exc, sqlite3.IntegrityError) else exc
            return False, error
        if savepoint:
            conn.execute("RELEASE w")
        return True, results[0] if write.count else None

    def _retry_later(self, batch: list[_Write], exc: sqlite3.OperationalError) -> None:
        loop = self._loop
        now = loop.time()
        if self._busy_since is None:
            self._busy_since = now
        if now - self._busy_since >= BUSY_TIMEOUT_S:
            self._busy_since, self._pause = None, _FIRST_PAUSE_S
            _fail(batch, exc)
            return
        self._queue[:0] = batch  # first in line when the lock frees
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_later(self._pause, self._flush)
            self._pause = min(self._pause * 2, _MAX_PAUSE_S)

    # ---------------------------------------------------------------------------------------- reads
    async def fetchone(self, sql: str, args: Sequence[Any]) -> Sequence[Any] | None:
        try:
            # all: the statement is reset, no snapshot held
            rows = self._conn.execute(sql, args).fetchall()
            return rows[0] if rows else None
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc):
                raise
        async with self._fallback_lock:  # contended: wait for the lock off the loop
            rows = list(await self._fallback.execute_fetchall(sql, args))
        return rows[0] if rows else None

    # --------------------------------------------------------------------------------------- upkeep
    async def _checkpoint(self) -> None:
        # the bulk, niced, off the loop; writes go on
        wal_bytes = await self._checkpointer.catch_up()
        async with self._fallback_lock:
            self._held = True
            try:
                # What was appended meanwhile. With nothing of ours after it, our next
                # commit finds the whole WAL in the database file and starts the WAL
                # again from its beginning. A WAL that a burst grew past wal_keep_bytes
                # is cut back to nothing here, on this thread, not the loop.
                mode = "TRUNCATE" if wal_bytes > self._wal_keep_bytes else "PASSIVE"
                await self._fallback.execute(f"PRAGMA wal_checkpoint({mode})")
            finally:
                self._held = False
                if self._queue and not self._flush_scheduled:
                    self._flush_scheduled = True
                    self._loop.call_soon(self._flush)

    async def _checkpoint_in_background(self) -> None:
        try:
            await self._checkpoint()
        except Exception as exc:  # the next one may succeed; writes never depend on it
            log.warning("SQLite checkpoint failed: %s", exc)
        finally:
            self._checkpointing = None

    async def close(self) -> None:
        """Queued writes are still applied (or fail with the lock error) before the
        connection closes."""
        self._closing = True
        if self._checkpointing is not None:
            await self._checkpointing
        if self._queue:
            await asyncio.gather(*(w.future for w in self._queue), return_exceptions=True)
        self._conn.close()
        await self._checkpointer.close()
        await self._fallback.close()


def _changed(cur: sqlite3.Cursor) -> int:
    """Rows a DML statement changed (``sqlite3_changes``), or the rows a SELECT or
    RETURNING produced. The hot statements carry no RETURNING: on SQLite it stores
    its rows in a temporary b-tree, opened and dropped on every run (EXPLAIN:
    ``OpenEphemeral``), for a count ``rowcount`` already has."""
    if cur.description is None:
        return cur.rowcount
    return len(cur.fetchall())


def _settle(batch: list[_Write], outcomes: list[tuple[bool, Any]]) -> None:
    for write, (ok, value) in zip(batch, outcomes, strict=False):
        if write.future.done():
            continue
        if not ok:
            write.future.set_exception(value)
        elif isinstance(value, _Refused):
            write.future.set_result(0 if write.count else value.index)
        else:
            write.future.set_result(value)


def _fail(batch: list[_Write], exc: Exception) -> None:
    for write in batch:
        if not write.future.done():
            write.future.set_exception(exc)
