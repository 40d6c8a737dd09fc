"""Start to ready: ``kling-gateway serve`` from process start until ``/healthz`` answers.

    python bench/startup.py [--runs 5]

Two cases, each run ``--runs`` times on a fresh temp dir: **first start** (empty SQLite file:
migrations, bootstrap user and key, built-in simulator) and **restart** (the same files again:
schema already at head). Prints the median wall time and the CPU the server process had used when it
answered (less noisy than wall time on a shared machine). Not part of the test run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
from procstats import BIN, cpu_seconds, free_port


def start_once(tmp: Path) -> tuple[float, float]:
    port, sim_port = free_port(), free_port()
    env = {
        **os.environ,
        "KGW_DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/gw.db",
        "KGW_MASTER_KEY_FILE": str(tmp / "master.key"),
        "KGW_PORT": str(port),
        "KGW_SIMULATOR_PORT": str(sim_port),
    }
    env = {k: v for k, v in env.items() if not k.startswith("KGW_KLING_")}
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [str(BIN), "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"serve exited with {proc.returncode}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=0.5).status_code == 200:
                    return time.perf_counter() - t0, cpu_seconds(proc.pid)
            except httpx.HTTPError:
                time.sleep(0.01)
            if time.perf_counter() - t0 > 30:
                raise SystemExit("not ready after 30 s")
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    first: list[tuple[float, float]] = []
    again: list[tuple[float, float]] = []
    for _ in range(args.runs):
        tmp = Path(tempfile.mkdtemp(prefix="kgw-start-"))
        first.append(start_once(tmp))
        again.append(start_once(tmp))
    for name, runs in (("first start", first), ("restart", again)):
        wall = statistics.median(r[0] for r in runs)
        cpu = statistics.median(r[1] for r in runs)
        print(
            f"{name:<12} ready in {wall:5.2f} s (median of {len(runs)}), process CPU {cpu:5.2f} s"
        )


if __name__ == "__main__":
    main()
