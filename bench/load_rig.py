"""bench/load.py's rig: the servers under test, their cores, and what wrk needs to reach them."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson
from procstats import rss_mb, sim_token
from wrk import get_script, post_script

BODY = orjson.dumps(
    {"model_name": "kling-v2-6", "prompt": "A red fox in fresh snow", "duration": "5"}
)
GATEWAY_SIDES = frozenset({"gateway", "gateway-target"})


def move_to(pid: int, core: int) -> None:
    """``taskset -p`` for a running child; a no-op where that core is not ours to use."""
    if core in os.sched_getaffinity(0):
        os.sched_setaffinity(pid, {core})


@contextlib.contextmanager
def peak_rss(pid: int, into: list[float]) -> Iterator[None]:
    """Sample the RSS of ``pid`` every 100 ms while the block runs; append the peak to ``into``."""
    stop = threading.Event()
    peak = [rss_mb(pid)]

    def sample() -> None:
        while not stop.wait(0.1):
            peak[0] = max(peak[0], rss_mb(pid))

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        into.append(peak[0])


@dataclass
class Rig:
    """The two servers under test and what wrk needs to reach them."""

    tmp: Path
    sim: subprocess.Popen[bytes]
    gw: subprocess.Popen[bytes]
    sim_port: int
    gw_port: int
    sim_headers: dict[str, str]
    gw_headers: dict[str, str]
    log: Path
    scripts: dict[str, tuple[str, Path]] = field(default_factory=dict)

    def target(self, phase: str, gap_ms: int | None) -> tuple[str, Path]:
        """URL and Lua script of a phase; GET phases read the ids their side created last."""
        side, op = phase.split()
        sim = side not in GATEWAY_SIDES
        headers = self.sim_headers if sim else self.gw_headers
        path = "/v1/videos/text2video" if sim else "/kling/v1/videos/text2video"
        url = f"http://127.0.0.1:{self.sim_port if sim else self.gw_port}{path}"
        script = self.tmp / f"{side}_{op}.lua"
        if op == "submit":
            post_script(script, BODY, headers, gap_ms)
        else:
            ids = self.tmp / f"{'simulator' if sim else 'gateway'}_ids.txt"
            get_script(script, path + "/", ids, headers, gap_ms)
        return url, script

    def reset_simulator(self) -> None:
        """Forget the simulator's tasks before each submit phase: its store holds every task in
        memory, and at >10k creates/s the growing heap's GC pauses would otherwise show up in the
        p99 of every later phase on either side (the gateway's creates call it)."""
        httpx.post(f"http://127.0.0.1:{self.sim_port}/__sim/reset", headers={"Connection": "close"})

    def save_ids(self, side: str, wanted: int) -> None:
        gateway = side in GATEWAY_SIDES
        ids = self.gateway_ids(wanted) if gateway else self.sim_ids(wanted)
        name = "gateway" if gateway else "simulator"
        (self.tmp / f"{name}_ids.txt").write_text("\n".join(ids) + "\n")

    def sim_ids(self, wanted: int) -> list[str]:
        headers = {"Authorization": f"Bearer {sim_token()}"}
        ids: list[str] = []
        for page in range(1, wanted // 500 + 2):
            url = (
                f"http://127.0.0.1:{self.sim_port}/v1/videos/text2video?pageNum={page}&pageSize=500"
            )
            ids += [
                t["task_id"] for t in httpx.get(url, headers=headers, timeout=30).json()["data"]
            ]
        return ids[:wanted]

    def gateway_ids(self, wanted: int) -> list[str]:
        with contextlib.closing(
            sqlite3.connect(f"file:{self.tmp}/gw.db?mode=ro", uri=True)
        ) as conn:
            rows = conn.execute(
                "SELECT id FROM tasks ORDER BY id DESC LIMIT ?", (wanted,)
            ).fetchall()
        return [r[0] for r in rows]
