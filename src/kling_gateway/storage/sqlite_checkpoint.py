"""The bulk of the SQLite hot driver's checkpoints: on a thread of its own, below the event loop's
priority. Measurements: docs/benchmarks.md, "Why the code is shaped this way".

Why a thread of its own, niced. Under create load a checkpoint copies tens of megabytes of WAL
frames once a second, and the gateway is often held to one core: on the loop's core at full
priority that copy stalled the loop at every checkpoint. Niced, it takes the core's idle moments,
and under saturation still a tenth of it, so the WAL keeps being checkpointed. (Linux applies
``setpriority`` on a thread id to that thread alone; where it is refused the thread simply runs at
the process's priority.)

Why several passes. The driver restarts the WAL by holding its own writes while a last passive
checkpoint copies what was appended during the previous one (sqlite_hot.py). That hold stalls every
create waiting to commit for as long as the frames left to copy take, so passes repeat, unheld,
until one is quick, and the held pass copies only what a quick pass let in. (A pass's time, not its
frame counts, is the measure: SQLite's counts start again from 1 whenever a writer restarts the WAL
between two passes.)

Why a readahead hint first. After the restart the writer overwrites the WAL from its start, and a
WAL frame (24-byte header + page) never covers whole OS pages: where those pages left the page
cache meanwhile (memory pressure, a host's proactive reclaim), each commit's ``pwrite`` first reads
them back from disk, on the loop. ``POSIX_FADV_WILLNEED`` over the WAL at the start of each
checkpoint brings them back in the background before the restart needs them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor

NICE = 10  # idle moments, or about a tenth of a saturated core
# a pass this quick leaves the held pass about a millisecond of frames to copy
CATCH_UP_SECONDS = 0.004
MAX_UNHELD_PASSES = 4
READAHEAD_STEP = 128 * 1024


def _lower_priority() -> None:
    tid = threading.get_native_id()
    with contextlib.suppress(OSError, AttributeError):  # not Linux, or not allowed: run as we are
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + NICE)


class Checkpointer:
    """Unheld passive checkpoints on one niced thread, with a connection opened and
    used only there."""

    def __init__(self, path: str, busy_timeout_ms: int) -> None:
        self._path = path
        self._busy_timeout_ms = busy_timeout_ms
        self._pool = ThreadPoolExecutor(1, "sqlite-checkpoint", initializer=_lower_priority)
        self._conn: sqlite3.Connection | None = None

    def _pass(self) -> float:
        """One passive checkpoint; the seconds it took."""
        started = time.perf_counter()
        conn = self._conn
        if conn is None:
            conn = self._conn = sqlite3.connect(self._path, isolation_level=None)
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(f"PRAGMA busy_timeout={self._busy_timeout_ms}")
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        return time.perf_counter() - started

    def _read_ahead(self) -> None:
        """Hint the kernel to bring the WAL's evicted pages back (see above)."""
        try:
            fd = os.open(f"{self._path}-wal", os.O_RDONLY)
        except FileNotFoundError:
            return
        try:
            with contextlib.suppress(OSError, AttributeError):
                # One call reads ahead at most the device's readahead window (128 KiB
                # by default), however long the range: one call per window. Pages
                # still cached are skipped by the kernel.
                for offset in range(0, os.fstat(fd).st_size, READAHEAD_STEP):
                    os.posix_fadvise(fd, offset, READAHEAD_STEP, os.POSIX_FADV_WILLNEED)
        finally:
            os.close(fd)

    def _wal_bytes(self) -> int:
        try:
            return os.stat(f"{self._path}-wal").st_size
        except FileNotFoundError:
            return 0

    async def catch_up(self) -> int:
        """The readahead hint, then passes until one took less than ``CATCH_UP_SECONDS`` (at most
        ``MAX_UNHELD_PASSES``); returns the WAL file's size in bytes."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._pool, self._read_ahead)
        for _ in range(MAX_UNHELD_PASSES):
            if await loop.run_in_executor(self._pool, self._pass) < CATCH_UP_SECONDS:
                break
        return await loop.run_in_executor(self._pool, self._wal_bytes)

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._pool, self._close)
        self._pool.shutdown(wait=True)
