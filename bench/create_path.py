"""Create and GET through the gateway vs straight to the built-in simulator, in one process tree.

    python bench/create_path.py [--requests 2000] [--concurrency 20] [--py-spy DIR]

Starts the simulator and the gateway (SQLite in a temp dir, upstream = the simulator over loopback)
as child processes, drives both with the same aiohttp client (lean enough not to be the bottleneck
first), and prints throughput, latency p50/p99 and the CPU each server process spent per request
(from /proc, so the load generator's own cost is excluded). With ``--py-spy DIR`` each gateway phase
is sampled by py-spy (``pip install -e '.[bench]'``) into ``DIR/gateway-{create,get}.txt`` as
collapsed stacks (one ``frame;frame;… count`` line per stack), which ``bench/stacks.py`` sums per
function. Not part of the test run: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import signal
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import httpx
import orjson
from procstats import BIN, cpu_seconds, free_port, gateway_env, rss_mb, sim_token


def wait_ready(url: str, timeout: float = 20.0) -> float:
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        try:
            if httpx.get(url, timeout=0.5).status_code < 500:
                return time.perf_counter() - start
        except httpx.HTTPError:
            time.sleep(0.02)
    raise SystemExit(f"{url} not ready after {timeout}s")


async def reset_postgres(url: str) -> None:
    """``--database-url``: the bench needs an empty database (the first start prints
    the key it uses)."""
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    finally:
        await conn.close()


@contextlib.contextmanager
def sampled(pid: int, out: Path | None) -> Iterator[None]:
    """py-spy on ``pid`` while the block runs (collapsed stacks in ``out``); no-op
    without ``out``."""
    if out is None:
        yield
        return
    spy = subprocess.Popen(
        [
            str(BIN.parent / "py-spy"),
            "record",
            "--pid",
            str(pid),
            "--rate",
            "250",
            "--format",
            "raw",
            "--output",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)  # py-spy attaches before the load starts
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)
        spy.wait(30)


@dataclass
class Phase:
    name: str
    n: int
    seconds: float
    latencies: list[float]
    cpu: float

    def row(self) -> str:
        lat = sorted(self.latencies)
        p50 = lat[len(lat) // 2] * 1000
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000
        return (
            f"{self.name:<22} {self.n / self.seconds:>9.0f}/s  p50 {p50:6.2f} ms  p99 {p99:6.2f} ms"
            f"  cpu/req {self.cpu / self.n * 1000:6.3f} ms"
        )


async def drive(
    name: str, pid: int, n: int, conc: int, make: Callable[[int], Awaitable[tuple[int, bytes]]]
) -> tuple[Phase, list[str]]:
    latencies: list[float] = []
    ids: list[str] = []
    counter = iter(range(n))

    async def worker() -> None:
        for i in counter:
            t0 = time.perf_counter()
            status, raw = await make(i)
            latencies.append(time.perf_counter() - t0)
            if status != 200:
                raise SystemExit(f"{name}: HTTP {status} {raw[:200]!r}")
            data = orjson.loads(raw)["data"]
            if isinstance(data, dict) and "task_id" in data:
                ids.append(data["task_id"])

    cpu0 = cpu_seconds(pid)
    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(conc)))
    return Phase(name, n, time.perf_counter() - t0, latencies, cpu_seconds(pid) - cpu0), ids


async def run(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="kgw-bench-"))
    sim_port, gw_port = free_port(), free_port()
    sim = subprocess.Popen(  # noqa: ASYNC220 - the children start before any load is measured
        [str(BIN), "simulator", "--port", str(sim_port), "--concurrency", "1000000"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    # The create phase measures the request path alone; tracking has its own benchmark.
    env = gateway_env(tmp, sim_port, gw_port, KGW_FIRST_POLL_SECONDS=str(args.first_poll))
    if args.database_url:
        await reset_postgres(args.database_url)
        env["KGW_DATABASE_URL"] = args.database_url
    t_start = time.perf_counter()
    log = (tmp / "gateway.log").open("w+")
    gw = subprocess.Popen(  # noqa: ASYNC220
        [str(BIN), "serve"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        wait_ready(f"http://127.0.0.1:{sim_port}/__sim/stats")
        wait_ready(f"http://127.0.0.1:{gw_port}/readyz")
        ready = time.perf_counter() - t_start
        match = re.search(r"(sk-[A-Za-z0-9_-]{20,})", (tmp / "gateway.log").read_text())
        if match is None:
            raise SystemExit("no bootstrap key in the gateway's output")
        key = match.group(1)
        idle_rss = rss_mb(gw.pid)
        sim_headers = {"Authorization": "Bearer " + sim_token(), "Content-Type": "application/json"}
        gw_headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        body = orjson.dumps(
            {"model_name": "kling-v2-6", "prompt": "A red fox in fresh snow", "duration": "5"}
        )
        connector = aiohttp.TCPConnector(limit=args.concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:
            sim_url = f"http://127.0.0.1:{sim_port}/v1/videos/text2video"
            gw_url = f"http://127.0.0.1:{gw_port}/kling/v1/videos/text2video"

            async def post(url: str, headers: dict[str, str]) -> tuple[int, bytes]:
                async with session.post(url, data=body, headers=headers) as resp:
                    return resp.status, await resp.read()

            async def get(url: str, headers: dict[str, str]) -> tuple[int, bytes]:
                async with session.get(url, headers=headers) as resp:
                    return resp.status, await resp.read()

            n, conc = args.requests, args.concurrency
            await drive("warm-up", gw.pid, 200, conc, lambda i: post(gw_url, gw_headers))
            await drive("warm-up", sim.pid, 200, conc, lambda i: post(sim_url, sim_headers))
            sim_c, sim_ids = await drive(
                "simulator create", sim.pid, n, conc, lambda i: post(sim_url, sim_headers)
            )
            spy = args.py_spy
            with sampled(gw.pid, spy / "gateway-create.txt" if spy else None):
                gw_c, gw_ids = await drive(
                    "gateway create", gw.pid, n, conc, lambda i: post(gw_url, gw_headers)
                )
            sim_g, _ = await drive(
                "simulator get",
                sim.pid,
                n,
                conc,
                lambda i: get(f"{sim_url}/{sim_ids[i % n]}", sim_headers),
            )
            with sampled(gw.pid, spy / "gateway-get.txt" if spy else None):
                gw_g, _ = await drive(
                    "gateway get",
                    gw.pid,
                    n,
                    conc,
                    lambda i: get(f"{gw_url}/{gw_ids[i % n]}", gw_headers),
                )
        load_rss = rss_mb(gw.pid)
        print(f"requests per phase: {n}, concurrency: {conc}, cores: {os.cpu_count()}")
        for phase in (sim_c, gw_c, sim_g, gw_g):
            print(phase.row())
        create_ratio = gw_c.n / gw_c.seconds / (sim_c.n / sim_c.seconds)
        get_ratio = gw_g.n / gw_g.seconds / (sim_g.n / sim_g.seconds)
        print(
            f"ratios gateway/simulator: create throughput {create_ratio:.2f}, get throughput "
            f"{get_ratio:.2f}"
        )
        per_create, per_get = gw_c.cpu / n * 1000, gw_g.cpu / n * 1000
        print(
            f"gateway CPU per create {per_create:.3f} ms (target 0.5 ms); per get {per_get:.3f} ms"
        )
        print(
            f"gateway RSS idle {idle_rss:.0f} MB, after load {load_rss:.0f} MB; start to ready "
            f"{ready:.2f} s"
        )
    finally:
        for proc in (gw, sim):
            proc.terminate()
        for proc in (gw, sim):
            proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument(
        "--first-poll", type=float, default=3600.0, help="KGW_FIRST_POLL_SECONDS for the gateway"
    )
    parser.add_argument(
        "--database-url",
        default="",
        help="a PostgreSQL URL to run the gateway on; its schema is DROPPED first",
    )
    parser.add_argument(
        "--py-spy", type=Path, default=None, help="sample each gateway phase into DIR"
    )
    args = parser.parse_args()
    if args.py_spy:
        args.py_spy.mkdir(parents=True, exist_ok=True)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
