"""Instructions per create and per GET in a real ``serve`` process, counted by callgrind: an A/B of
code changes that host noise cannot blur.

    python bench/instructions.py [--requests 400] [--src DIR ...] [--syscalls]

Why: on shared 2-core hosts CPU time per request drifts by ±25 % from minute to
minute (steal, frequency, neighbours), so a 5 % change cannot be seen by timing it,
and a benchmark run on a slower host reads as a regression. Instruction counts do not
drift: repeated runs of the same code agree within ~2 %.

How: the built-in simulator (``kling-gateway simulator``) runs twice, once natively as the gateway's
upstream and once under ``valgrind --tool=callgrind`` for its own figures; each gateway (``serve``,
SQLite in a temp dir, money on, refresher held off) runs under callgrind with ``PYTHONPATH``
pointing at one source tree (``--src``, default this checkout's ``src``; pass an older checkout's to
compare). After a warm-up, ``callgrind_control --zero`` clears the counters, one aiohttp client
sends ``--requests`` creates (then as many GETs of the tasks it made) at concurrency 20, and
``callgrind_control --dump`` writes the count. Printed: instructions per request for each server,
and each gateway's ratio to the simulator. Needs Debian's ``valgrind``; takes ~2 minutes per server.
Instructions are not time (a syscall or a cache miss costs more than an add, a ``memset`` loop
less), so the CPU figures of ``create_path.py`` stay the reference for absolute cost; this says
which way a change moved it. System calls are not instructions at all: ``--syscalls`` runs each
server natively instead, with ``strace -c -f`` attached for the counted creates, and prints system
calls per create by name (Debian's ``strace``). Not part of the test run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path

import aiohttp
import orjson
from procstats import bootstrap_key, free_port, gateway_env, sim_token, simulator_cmd, wait_http

ROOT = Path(__file__).resolve().parent.parent
BODY = orjson.dumps(
    {"model_name": "kling-v2-6", "prompt": "A red fox in fresh snow", "duration": "5"}
)
CLI = "from kling_gateway.cli import main; main()"
WARMUP = 200
CONCURRENCY = 20


def callgrind(out: Path, argv: list[str]) -> list[str]:
    return [
        "valgrind",
        "--tool=callgrind",
        f"--callgrind-out-file={out}",
        sys.executable,
        "-c",
        CLI,
        *argv,
    ]


class Counted:
    """One server under callgrind: zero its counters, run a load, read what the load cost."""

    def __init__(self, proc: subprocess.Popen[bytes], out: Path) -> None:
        self.proc = proc
        self.out = out

    def _control(self, flag: str) -> None:
        subprocess.run(
            ["callgrind_control", flag, str(self.proc.pid)], capture_output=True, check=True
        )

    def measure(self, drive: Callable[[], Coroutine[None, None, int]]) -> float:
        """Instructions per request of the load ``drive()`` (a coroutine factory
        returning its count)."""
        self._control("--zero")
        n: int = asyncio.run(drive())
        before = set(glob.glob(f"{self.out}.*"))
        self._control("--dump")
        deadline = time.monotonic() + 60
        while True:
            new = set(glob.glob(f"{self.out}.*")) - before
            if new:
                dump = max(new, key=os.path.getmtime)
                time.sleep(0.5)  # the file is written in one go; give it a moment to be complete
                for line in Path(dump).read_text().splitlines():
                    if line.startswith(("summary:", "totals:")):
                        return float(int(line.split()[1]) / n)
            if time.monotonic() > deadline:
                raise SystemExit(f"no callgrind dump for {self.out}")
            time.sleep(0.2)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(300)


async def send(
    url: str, headers: dict[str, str], count: int, paths: list[str] | None = None
) -> list[str]:
    """``count`` creates (or GETs of ``paths``, cycled) at fixed concurrency; the
    created task ids."""
    made: list[str] = []
    todo = list(range(count))
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=900)) as session:

        async def worker() -> None:
            while todo:
                i = todo.pop()
                if paths is None:
                    async with session.post(url, data=BODY, headers=headers) as resp:
                        body = await resp.read()
                        if resp.status != 200:
                            raise SystemExit(f"create answered {resp.status}: {body[:200]!r}")
                        data = orjson.loads(body)["data"]
                        made.append(str(data["task_id"]))
                else:
                    async with session.get(
                        f"{url}/{paths[i % len(paths)]}", headers=headers
                    ) as resp:
                        await resp.read()
                        if resp.status != 200:
                            raise SystemExit(f"GET answered {resp.status}")

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return made


def measure_server(
    counted: Counted, url: str, headers: dict[str, str], n: int
) -> tuple[float, float]:
    ids = asyncio.run(send(url, headers, WARMUP))
    created: list[str] = []

    async def creates() -> int:
        created.extend(await send(url, headers, n))
        return n

    async def gets() -> int:
        await send(url, headers, n, paths=created or ids)
        return n

    return counted.measure(creates), counted.measure(gets)


def syscalls(
    proc: subprocess.Popen[bytes], url: str, headers: dict[str, str], n: int
) -> dict[str, float]:
    """System calls per create of a native server, by name, while ``n`` creates run."""
    asyncio.run(send(url, headers, WARMUP))
    with tempfile.NamedTemporaryFile(suffix=".strace") as out:
        tracer = subprocess.Popen(
            ["strace", "-c", "-f", "-o", out.name, "-p", str(proc.pid)], stderr=subprocess.DEVNULL
        )
        time.sleep(1.0)  # attached to every thread before the load starts
        asyncio.run(send(url, headers, n))
        tracer.send_signal(2)
        tracer.wait(60)
        counts: dict[str, float] = {}
        for line in Path(out.name).read_text().splitlines():
            cols = line.split()
            if len(cols) >= 5 and cols[3].isdigit() and cols[-1] != "total":
                counts[cols[-1]] = int(cols[3]) / n
    return counts


@contextlib.contextmanager
def gateway(
    home: Path, sim_port: int, src: Path, launch: list[str], ready_timeout: float
) -> Iterator[tuple[subprocess.Popen[bytes], str, dict[str, str]]]:
    """One ``serve`` of ``src`` on its own SQLite file in ``home``, in front of the simulator: the
    process, the create URL and the bootstrap key's headers."""
    home.mkdir()
    port = free_port()
    env = gateway_env(
        home, sim_port, port, KGW_FIRST_POLL_SECONDS="3600", PYTHONPATH=str(src), PYTHONHASHSEED="0"
    )
    log = home / "gateway.log"
    with log.open("w") as sink:
        proc = subprocess.Popen(launch, env=env, stdout=sink, stderr=subprocess.STDOUT)
    try:
        wait_http(f"http://127.0.0.1:{port}/readyz", timeout=ready_timeout)
        headers = {
            "Authorization": f"Bearer {bootstrap_key(log, ready_timeout)}",
            "Content-Type": "application/json",
        }
        yield proc, f"http://127.0.0.1:{port}/kling/v1/videos/text2video", headers
    finally:
        proc.terminate()
        proc.wait(300)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--requests", type=int, default=400, help="creates (and GETs) counted per server"
    )
    parser.add_argument(
        "--src", action="append", type=Path, help="source tree(s) to count; default ./src"
    )
    parser.add_argument(
        "--syscalls", action="store_true", help="count system calls per create (strace)"
    )
    args = parser.parse_args()
    if args.syscalls:
        if shutil.which("strace") is None:
            raise SystemExit("needs strace (Debian: apt-get install strace)")
        count_syscalls(args)
        return
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        raise SystemExit("needs valgrind (Debian: apt-get install valgrind)")
    sources = [p.resolve() for p in (args.src or [ROOT / "src"])]
    tmp = Path(tempfile.mkdtemp(prefix="kgw-instructions-"))
    results: dict[str, tuple[float, float]] = {}

    # the simulator's own figures, under callgrind like the gateways
    sim_port = free_port()
    out = tmp / "sim.cg"
    # drop the kling-gateway launcher: run through CLI under valgrind
    sim_cmd = simulator_cmd(sim_port)[1:]
    proc = subprocess.Popen(
        callgrind(out, sim_cmd), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_http(f"http://127.0.0.1:{sim_port}/__sim/stats", timeout=600)
        headers = {"Authorization": f"Bearer {sim_token()}", "Content-Type": "application/json"}
        url = f"http://127.0.0.1:{sim_port}/v1/videos/text2video"
        results["simulator"] = measure_server(Counted(proc, out), url, headers, args.requests)
    finally:
        Counted(proc, out).stop()

    upstream = subprocess.Popen(
        simulator_cmd(sim_port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_http(f"http://127.0.0.1:{sim_port}/__sim/stats")
        for i, src in enumerate(sources):
            home = tmp / f"gw{i}"
            with gateway(home, sim_port, src, callgrind(home / "gw.cg", ["serve"]), 900) as (
                proc,
                url,
                headers,
            ):
                results[str(src)] = measure_server(
                    Counted(proc, home / "gw.cg"), url, headers, args.requests
                )
    finally:
        upstream.terminate()
        upstream.wait(20)

    sim_create, sim_get = results["simulator"]
    print(
        f"instructions per request (callgrind), {args.requests} creates and GETs at concurrency "
        f"{CONCURRENCY}"
    )
    for name, (create, get) in results.items():
        ratio = (
            ""
            if name == "simulator"
            else f"   ×{create / sim_create:.1f} / ×{get / sim_get:.1f} the simulator"
        )
        print(f"  {name:<40} create {create / 1e6:6.3f}M   GET {get / 1e6:6.3f}M{ratio}")


def count_syscalls(args: argparse.Namespace) -> None:
    sources = [p.resolve() for p in (args.src or [ROOT / "src"])]
    tmp = Path(tempfile.mkdtemp(prefix="kgw-syscalls-"))
    sim_port = free_port()
    sim = subprocess.Popen(
        simulator_cmd(sim_port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    results: dict[str, dict[str, float]] = {}
    try:
        wait_http(f"http://127.0.0.1:{sim_port}/__sim/stats")
        headers = {"Authorization": f"Bearer {sim_token()}", "Content-Type": "application/json"}
        results["simulator"] = syscalls(
            sim, f"http://127.0.0.1:{sim_port}/v1/videos/text2video", headers, args.requests
        )
        for i, src in enumerate(sources):
            launch = [sys.executable, "-c", CLI, "serve"]
            with gateway(tmp / f"gw{i}", sim_port, src, launch, 30) as (proc, url, headers):
                results[str(src)] = syscalls(proc, url, headers, args.requests)
    finally:
        sim.terminate()
        sim.wait(20)
    sim_total = sum(results["simulator"].values())
    print(
        f"system calls per create (strace -c -f), {args.requests} creates at concurrency "
        f"{CONCURRENCY}"
    )
    for name, counts in results.items():
        total = sum(counts.values())
        ratio = "" if name == "simulator" else f"  ×{total / sim_total:.1f} the simulator"
        top = ", ".join(
            f"{call} {n:.2f}" for call, n in sorted(counts.items(), key=lambda kv: -kv[1])[:8]
        )
        print(f"  {name:<40} {total:6.1f}{ratio}\n      {top}")


if __name__ == "__main__":
    main()
