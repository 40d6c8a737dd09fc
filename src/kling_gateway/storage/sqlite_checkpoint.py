"""The bulk of the SQLite hot driver's checkpoints: on a thread of its own, below the event loop's priority.

Why a thread of its own, niced. Under create load a checkpoint copies tens of megabytes of WAL frames
into the database file once a second (~20,000 frames at 1,300 creates/s; 45–55 ms of CPU). The gateway
process is often held to one core (one worker per core, or pinned), so that copy competed with the event
loop for it: a watchdog on the loop saw 8–10 ms stalls at every checkpoint, the submit p99's largest
share. Niced, the copy takes the core's idle moments, and under saturation still a tenth of it, so the
WAL keeps being checkpointed. (Linux applies ``setpriority`` on a thread id to that thread alone; where it
is refused the thread simply runs at the process's priority.)

Why several passes. The driver restarts the WAL by holding its own writes while a last passive checkpoint
copies what was appended during the previous one (sqlite_hot.py). That hold is a stall for every create
waiting to commit, and it lasts as long as the frames left to copy: ~700 frames and 4–6 ms after one
45 ms pass. So passes repeat, unheld, until one is quick: what was appended during a quick pass is
little, and the held pass copies just that. (A pass's time, not its frame counts, is the measure: the
counts SQLite reports start again from 1 whenever a writer restarts the WAL between two passes.)

Why a readahead hint first. After the restart the writer overwrites the WAL from its start, and a WAL
frame (24-byte header + page) never covers whole OS pages: where those pages left the page cache meanwhile
(memory pressure, or a host's proactive reclaim — the benchmark machines page out ~3 GB of "cold" cache
with DAMON), each commit's ``pwrite`` first reads them back from disk, on the loop. A watchdog saw COMMITs
of 20–50 ms in ``ext4_block_write_begin``, once a second, and 13,000 page-cache refaults in a 10 s run.
``POSIX_FADV_WILLNEED`` over the WAL at the start of each checkpoint brings such pages back in the
background, about 60 ms before the restart needs them: 100–400 refaults, and those stalls gone (the
kernel caps one call at its readahead window, so the hint goes out a window at a time).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor

NICE = 10  # CFS weight ~110 against the loop's 1024: idle moments, or ~10 % of a saturated core
CATCH_UP_SECONDS = 0.004  # a pass this quick leaves the held pass about a millisecond of frames to copy
MAX_UNHELD_PASSES = 4
READAHEAD_STEP = 128 * 1024


def _lower_priority() -> None:
    tid = threading.get_native_id()
    with contextlib.suppress(OSError, AttributeError):  # not Linux, or not allowed: run as we are
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + NICE)


class Checkpointer:
    """Unheld passive checkpoints on one niced thread, with a connection opened and used only there."""

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
                # One call reads ahead at most the device's readahead window (128 KiB by default), however
                # long the range: one call per window. Pages still cached are skipped by the kernel.
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
