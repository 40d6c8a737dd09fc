"""Tracking at scale: N tasks in flight, how late does the gateway learn that upstream finished?

    python bench/tracking.py --tasks 10000 --mode callbacks
    python bench/tracking.py --tasks 10000 --mode polling --poll-interval 30

Starts the simulator (`kling-gateway simulator`) and the gateway (`kling-gateway serve`, SQLite,
upstream = the simulator over loopback) as child processes, creates N tasks, waits until all are
terminal, then compares, per task, the simulator's completion time (its task `updated_at`) with the
time the gateway's row reached the terminal state (our `updated_at`). Prints freshness lag
p50/p99/max, upstream reads per task (the gateway's `poll_attempts`), and the gateway's CPU and RSS.
Not part of the test run.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sqlite3
import subprocess
import tempfile
import time
from pathlib import Path

import aiohttp
import orjson
from procstats import BIN, cpu_seconds, free_port, gateway_env, pct, rss_mb, sim_token


async def wait_ready(session: aiohttp.ClientSession, url: str) -> None:
    for _ in range(400):
        try:
            async with session.get(url) as resp:
                if resp.status < 500:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.05)
    raise SystemExit(f"{url} never became ready")


async def run(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="kgw-track-"))
    sim_port, gw_port = free_port(), free_port()
    sim = subprocess.Popen(  # noqa: ASYNC220 - children start before anything is measured
        [
            str(BIN),
            "simulator",
            "--port",
            str(sim_port),
            "--concurrency",
            "10000000",
            "--submitted-seconds",
            "1",
            "--processing-seconds",
            str(args.render_seconds),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    env = gateway_env(
        tmp,
        sim_port,
        gw_port,
        KGW_POLL_RENDER_SCALE="0",
        KGW_POLL_CONCURRENCY_PER_ACCOUNT=str(args.poll_concurrency),
        KGW_REFRESH_BATCH="500",
    )
    if args.mode == "callbacks":
        env["KGW_PUBLIC_BASE_URL"] = f"http://127.0.0.1:{gw_port}"
        # polling stays as the fallback, at a relaxed pace
        env["KGW_FIRST_POLL_SECONDS"] = env["KGW_MAX_POLL_SECONDS"] = str(args.fallback_poll)
    else:
        env["KGW_FIRST_POLL_SECONDS"] = env["KGW_MAX_POLL_SECONDS"] = str(args.poll_interval)
    log = (tmp / "gateway.log").open("w+")
    gw = subprocess.Popen([str(BIN), "serve"], env=env, stdout=log, stderr=subprocess.STDOUT)  # noqa: ASYNC220
    try:
        connector = aiohttp.TCPConnector(limit=args.concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:
            await wait_ready(session, f"http://127.0.0.1:{sim_port}/__sim/stats")
            await wait_ready(session, f"http://127.0.0.1:{gw_port}/readyz")
            match = re.search(r"(sk-[A-Za-z0-9_-]{20,})", (tmp / "gateway.log").read_text())
            if match is None:
                raise SystemExit("no bootstrap key in the gateway's output")
            headers = {
                "Authorization": f"Bearer {match.group(1)}",
                "Content-Type": "application/json",
            }
            body = orjson.dumps(
                {"model_name": "kling-v2-6", "prompt": "tracking bench", "duration": "5"}
            )
            url = f"http://127.0.0.1:{gw_port}/kling/v1/videos/text2video"
            cpu0 = cpu_seconds(gw.pid)
            t0 = time.monotonic()
            counter = iter(range(args.tasks))

            async def creator() -> None:
                for _ in counter:
                    async with session.post(url, data=body, headers=headers) as resp:
                        if resp.status != 200:
                            raise SystemExit(f"create failed: {resp.status} {await resp.text()}")
                        await resp.read()

            await asyncio.gather(*(creator() for _ in range(args.concurrency)))
            created_in = time.monotonic() - t0
            print(f"created {args.tasks} tasks in {created_in:.1f} s; waiting for all to finish…")
            db = sqlite3.connect(f"file:{tmp}/gw.db?mode=ro", uri=True)
            peak_rss = rss_mb(gw.pid)
            deadline = time.monotonic() + args.render_seconds + args.poll_interval + 600
            while time.monotonic() < deadline:
                (left,) = db.execute(
                    "SELECT count(*) FROM tasks WHERE status NOT IN ('succeed','failed')"
                ).fetchone()
                peak_rss = max(peak_rss, rss_mb(gw.pid))
                if left == 0:
                    break
                await asyncio.sleep(0.5)
            cpu = cpu_seconds(gw.pid) - cpu0
            # upstream completion times, by our public id (= Kling's external_task_id)
            done: dict[str, int] = {}
            sim_headers = {"Authorization": f"Bearer {sim_token()}"}
            for page in range(1, args.tasks // 500 + 2):
                list_url = (
                    f"http://127.0.0.1:{sim_port}/v1/videos/text2video?pageNum={page}&pageSize=500"
                )
                async with session.get(list_url, headers=sim_headers) as resp:
                    for task in orjson.loads(await resp.read())["data"]:
                        ext = (task.get("task_info") or {}).get("external_task_id")
                        if ext and task["task_status"] in ("succeed", "failed"):
                            done[ext] = int(task["updated_at"])
            async with session.get(f"http://127.0.0.1:{sim_port}/__sim/stats") as resp:
                stats = orjson.loads(await resp.read())["data"]
        rows = db.execute("SELECT id, status, updated_at FROM tasks").fetchall()
        lags = [(updated - done[tid]) / 1000 for tid, _status, updated in rows if tid in done]
        # every simulator request that was not a create nor one of this script's list
        # pages is a gateway read
        reads_total = stats["requests"] - stats["tasks_created"] - (args.tasks // 500 + 1)
        terminal = sum(r[1] in ("succeed", "failed") for r in rows)
        print(f"mode {args.mode}; tasks {len(rows)}; terminal {terminal}")
        p50, p99 = pct(lags, 0.5), pct(lags, 0.99)
        print(
            f"freshness lag: p50 {p50:.2f} s, p99 {p99:.2f} s, max {max(lags):.2f} s (over "
            f"{len(lags)} tasks)"
        )
        print(f"upstream reads per task: {reads_total / len(rows):.2f} ({reads_total} reads)")
        print(
            f"simulator: callbacks sent {stats['callbacks_sent']}, failed "
            f"{stats['callbacks_failed']}"
        )
        per_task = cpu / len(rows) * 1000
        print(
            f"gateway CPU {cpu:.1f} s total ({per_task:.2f} ms per task); RSS peak {peak_rss:.0f} "
            "MB"
        )
    finally:
        for proc in (gw, sim):
            proc.terminate()
        for proc in (gw, sim):
            proc.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--mode", choices=["callbacks", "polling"], default="callbacks")
    parser.add_argument(
        "--poll-interval", type=float, default=30.0, help="polling mode: seconds between reads"
    )
    parser.add_argument(
        "--fallback-poll", type=float, default=120.0, help="callbacks mode: fallback poll"
    )
    parser.add_argument(
        "--render-seconds", type=float, default=60.0, help="simulator processing time"
    )
    parser.add_argument("--concurrency", type=int, default=32, help="parallel creates")
    parser.add_argument("--poll-concurrency", type=int, default=32)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
