"""Soak: mixed load through the gateway while upstream misbehaves and the gateway is SIGKILLed; then
prove that nothing was lost, nothing ran twice upstream and the ledger is exact.

    python bench/soak.py [--minutes 10] [--rate 30] [--kills 2] [--json FILE]

Loopback only and bounded: the simulator (`kling-gateway simulator`) and the gateway (`kling-gateway
serve`, SQLite file, money on, inbound Kling callbacks on with polling as the fallback) run as
separate processes on free 127.0.0.1 ports; the load stops after ``--minutes``, the drain after
``--drain`` seconds, and every process this script started is ended on the way out.

During the load the simulator injects faults (``/__sim/config``): ~20 % of creates answer 5xx (half
before making the task, half after: the "ambiguous" case), ~10 % of creates hang past the gateway's
upstream read timeout (2 s here) after making the task, 20 % of upstream reads answer 5000, 10 % of
tasks fail upstream, and every ``--burst-every`` seconds a ``--burst-seconds`` window answers every
create with 1303 (per-model concurrency set to 0). The gateway is SIGKILLed ``--kills`` times at
evenly spaced moments and restarted at once on the same port and database.

Clients (bench/soak_clients.py) submit at ``--rate`` logical tasks/s, each with its own external id,
retrying unanswered, 5xx and 429 creates with the same id; others GET accepted tasks and list pages.
Their timeout (``--client-timeout`` 1.5 s) is shorter than a hung create takes, so those retries
reach the gateway while the first attempt is still waiting upstream. Tracking is by polling, the
gateway's default; ``--callbacks`` adds inbound Kling callbacks (which move a row out of ``queued``
within milliseconds, and so hide the in-flight window from the retries). Then faults stop, the
gateway gets ``--drain`` seconds to finish everything, and bench/soak_audit.py checks the
invariants. Exit status 1 if any fails (or the drain timed out). Not part of the test run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
from procstats import (
    BIN,
    bootstrap_key,
    free_port,
    gateway_env,
    rss_mb,
    sim_token,
    simulator_cmd,
    wait_http,
)
from soak_audit import CLOSED, Verdict, audit_ledger, audit_tasks, audit_upstream, read_db
from soak_clients import Clients, Logical, Pacer

READ_TIMEOUT_S = 2.0
FAULTS: dict[str, Any] = {
    "create_error_rate": 0.1,  # 5000 before the task exists
    # 5000 after it exists (≈ 0.1 of all creates: it rolls after the first)
    "ambiguous_error_rate": 0.11,
    "hang_rate": 0.125,  # ≈ 0.1 of all creates: rolls after both of the above
    "hang_seconds": READ_TIMEOUT_S * 2,
    "get_error_rate": 0.2,
    "task_failure_rate": 0.1,
}
CALM = {name: 0.0 for name in FAULTS if name.endswith("_rate")}
NO_CAP = 100_000_000


class Gateway:
    """One ``kling-gateway serve`` child at a time, restartable on the same port and database."""

    def __init__(self, env: dict[str, str], port: int, log: Path, db: Path) -> None:
        self.env, self.port, self.log, self.db = env, port, log, db
        self.proc: subprocess.Popen[bytes] | None = None
        self.queued_at_kill: list[int] = []
        self.starts = 0
        self.downtime: list[float] = []
        self.peak_rss = 0.0

    def start(self) -> None:
        with self.log.open("a") as out:
            self.proc = subprocess.Popen([str(BIN), "serve"], env=self.env, stdout=out, stderr=out)
        self.starts += 1

    async def ready(self) -> float:
        return await asyncio.to_thread(wait_http, f"http://127.0.0.1:{self.port}/readyz", 60.0)

    async def kill_and_restart(self) -> None:
        """SIGKILL (no shutdown hooks, connections cut mid-request), then at once the
        same command."""
        assert self.proc is not None
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGKILL)
        await asyncio.to_thread(self.proc.wait)
        # creates cut off between the row insert and the upstream answer: the hard
        # case for idempotency
        self.queued_at_kill.append(await asyncio.to_thread(count_rows, self.db, ("queued",)))
        self.start()
        await self.ready()
        self.downtime.append(time.monotonic() - t0)

    def sample_rss(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(OSError):
                self.peak_rss = max(self.peak_rss, rss_mb(self.proc.pid))

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


async def sim_config(session: aiohttp.ClientSession, sim: str, patch: dict[str, Any]) -> None:
    """Change the simulator's faults at run time. A connection of its own each time: a pooled one
    may have idled past uvicorn's keep-alive and be closed under us."""
    headers = {"Connection": "close"}
    async with session.post(f"{sim}/__sim/config", json=patch, headers=headers) as resp:
        if resp.status != 200:
            raise SystemExit(f"simulator refused {patch}: {await resp.text()}")


async def chaos(
    session: aiohttp.ClientSession,
    sim: str,
    gw: Gateway,
    args: argparse.Namespace,
    stop: asyncio.Event,
) -> Counter[str]:
    """Kills at evenly spaced moments and 1303 bursts on their own rhythm, until ``stop``."""
    events: Counter[str] = Counter()
    start = time.monotonic()
    load_s = args.minutes * 60
    kills = [load_s * (i + 1) / (args.kills + 1) for i in range(args.kills)]
    next_burst = args.burst_every
    while not stop.is_set():
        elapsed = time.monotonic() - start
        gw.sample_rss()
        # died on its own: a finding in itself
        if gw.proc is not None and gw.proc.poll() is not None:
            print(f"  {elapsed:6.0f} s  gateway EXITED ({gw.proc.returncode}), restart", flush=True)
            events["unexpected gateway exits"] += 1
            gw.start()
            await gw.ready()
        if kills and elapsed >= kills[0]:
            kills.pop(0)
            print(f"  {elapsed:6.0f} s  SIGKILL gateway, restart", flush=True)
            await gw.kill_and_restart()
            events["gateway kills"] += 1
        if elapsed >= next_burst:
            next_burst += args.burst_every
            print(f"  {elapsed:6.0f} s  1303 burst for {args.burst_seconds:g} s", flush=True)
            await sim_config(session, sim, {"concurrency_per_model": 0})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), args.burst_seconds)
            await sim_config(session, sim, {"concurrency_per_model": NO_CAP})
            events["1303 bursts"] += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.25)
    return events


def count_rows(db: Path, statuses: tuple[str, ...], negate: bool = False) -> int:
    """Gateway rows in (or, ``negate``, not in) ``statuses``, read-only beside the
    running gateway."""
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)) as conn:
        marks = ",".join("?" * len(statuses))
        sql = f"SELECT count(*) FROM tasks WHERE status {'NOT IN' if negate else 'IN'} ({marks})"
        (n,) = conn.execute(sql, statuses).fetchone()
    return int(n)


async def drain(db: Path, seconds: float, gw: Gateway) -> float | None:
    """Seconds until every gateway row is finished, or None when ``seconds`` ran out first."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        gw.sample_rss()
        if await asyncio.to_thread(count_rows, db, tuple(CLOSED), True) == 0:
            return time.monotonic() - t0
        await asyncio.sleep(1.0)
    return None


async def sim_tasks(session: aiohttp.ClientSession, sim: str) -> list[dict[str, Any]]:
    headers = {"Authorization": f"Bearer {sim_token()}"}
    out: list[dict[str, Any]] = []
    for page in range(1, 1001):
        async with session.get(
            f"{sim}/v1/videos/text2video?pageNum={page}&pageSize=500", headers=headers
        ) as r:
            batch = (await r.json())["data"]
        out += batch
        if len(batch) < 500:
            return out
    raise SystemExit("more than 500,000 upstream tasks: the list cannot be read whole")


async def soak(args: argparse.Namespace, tmp: Path) -> tuple[Verdict, dict[str, Any]]:
    sim_port, gw_port = free_port(), free_port()
    sim_url = f"http://127.0.0.1:{sim_port}"
    sim_cmd = simulator_cmd(
        sim_port, "--submitted-seconds", "1", "--processing-seconds", str(args.render)
    )
    sim_proc = subprocess.Popen(  # noqa: ASYNC220 - started before any load runs
        sim_cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    env = gateway_env(
        tmp,
        sim_port,
        gw_port,
        KGW_UPSTREAM_READ_TIMEOUT=str(READ_TIMEOUT_S),
        KGW_POLL_RENDER_SCALE="0",
        KGW_FIRST_POLL_SECONDS="2",
        KGW_MAX_POLL_SECONDS="10",
    )
    if args.callbacks:  # inbound Kling callbacks, polling as the fallback (default: polling alone)
        env["KGW_PUBLIC_BASE_URL"] = f"http://127.0.0.1:{gw_port}"
    gw = Gateway(env, gw_port, tmp / "gateway.log", tmp / "gw.db")
    info: dict[str, Any] = {"sim_command": " ".join(sim_cmd), "faults": FAULTS}
    try:
        await asyncio.to_thread(wait_http, f"{sim_url}/__sim/stats")
        gw.start()
        info["first_ready_s"] = await gw.ready()
        key = bootstrap_key(gw.log)
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:
            await sim_config(session, sim_url, {**FAULTS, "seed": args.seed})
            clients = Clients(
                session,
                f"http://127.0.0.1:{gw_port}",
                key,
                f"{args.seed}",
                timeout_s=args.client_timeout,
                give_up_s=args.give_up,
            )
            stop = asyncio.Event()
            pacer = Pacer(args.rate)
            workers = [
                asyncio.create_task(clients.submitter(pacer, stop)) for _ in range(args.submitters)
            ]
            workers += [
                asyncio.create_task(clients.getter(stop, 0.02)) for _ in range(args.getters)
            ]
            workers.append(asyncio.create_task(clients.lister(stop, 0.5)))
            chaos_task = asyncio.create_task(chaos(session, sim_url, gw, args, stop))
            t0 = time.monotonic()
            print(
                f"load for {args.minutes:g} min at {args.rate:g} tasks/s (logs: {gw.log})",
                flush=True,
            )
            await asyncio.sleep(args.minutes * 60)
            stop.set()
            info["events"] = dict(await chaos_task)
            # submitters finish the task in hand (bounded by --give-up)
            await asyncio.gather(*workers)
            info["load_s"] = time.monotonic() - t0
            await sim_config(session, sim_url, {**CALM, "concurrency_per_model": NO_CAP})
            print(
                f"load done after {info['load_s']:.0f} s; draining (≤ {args.drain:g} s)…",
                flush=True,
            )
            info["drain_s"] = await drain(tmp / "gw.db", args.drain, gw)
            sem = asyncio.Semaphore(16)

            async def final(task: Logical) -> tuple[str, tuple[int, str | None, str | None]]:
                async with sem:
                    return task.ext, await clients.final_state(task)

            final_states = dict(await asyncio.gather(*(final(t) for t in clients.accepted)))
            upstream = await sim_tasks(session, sim_url)
            async with session.get(f"{sim_url}/__sim/stats") as resp:
                info["simulator"] = (await resp.json())["data"]
        gw.stop()
        db = read_db(tmp / "gw.db")
    finally:
        gw.stop()
        sim_proc.terminate()
        sim_proc.wait(30)
    verdict = Verdict()
    audit_tasks(db, clients.tasks, final_states, verdict)
    audit_upstream(db, upstream, verdict)
    audit_ledger(db, verdict)
    for note in clients.anomalies[:5]:
        verdict.examples["client anomalies"].append(note)
    verdict.figures["client anomalies"] = len(clients.anomalies)
    info["client_tally"] = dict(sorted(clients.tally.items()))
    info["gateway_starts"] = gw.starts
    info["downtime_s"] = [round(d, 2) for d in gw.downtime]
    info["queued_rows_at_kill"] = gw.queued_at_kill
    info["gateway_peak_rss_mb"] = round(gw.peak_rss)
    log = gw.log.read_text(errors="replace")
    info["gateway_log_tracebacks"] = log.count("Traceback")
    info["gateway_log_errors"] = log.count('"level":"error"')
    exits = info["events"].get("unexpected gateway exits", 0)
    verdict.must_be_zero["unexpected gateway exits"] = exits
    if info["drain_s"] is None:
        verdict.flag("drain timed out", f"rows still unfinished after {args.drain:g} s")
    else:
        verdict.ok("drain timed out")
    return verdict, info


def report(verdict: Verdict, info: dict[str, Any]) -> str:
    lines = ["", "what happened:"]
    keys = ("load_s", "drain_s", "events", "gateway_starts", "downtime_s", "queued_rows_at_kill")
    for k in (*keys, "gateway_peak_rss_mb"):
        lines.append(f"  {k:<28} {info.get(k)}")
    lines.append(f"  {'gateway log':<28} {info['gateway_log_tracebacks']} tracebacks")
    sim = info["simulator"]
    injected = {k: v for k, v in sim.items() if k.endswith(("_injected", "_refused"))}
    lines.append(f"  {'simulator':<28} {sim['tasks_created']} tasks, {injected}")
    lines.append(f"  {'clients saw':<28} {info['client_tally']}")
    lines.append("figures:")
    lines += [f"  {k:<45} {v}" for k, v in verdict.figures.items()]
    lines.append("invariants (must be 0):")
    for check, n in verdict.must_be_zero.items():
        lines.append(f"  {check:<45} {n}{'' if n == 0 else '   ← FAILED'}")
        lines += [f"      e.g. {e}" for e in verdict.examples.get(check, [])]
    lines += [f"  client anomaly: {e}" for e in verdict.examples.get("client anomalies", [])]
    lines.append("RESULT: " + ("FAILED" if verdict.failed else "all invariants hold"))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--minutes", type=float, default=10.0, help="length of the load (default 10)"
    )
    parser.add_argument("--rate", type=float, default=30.0, help="new logical tasks per second")
    parser.add_argument("--submitters", type=int, default=24)
    parser.add_argument("--getters", type=int, default=4)
    parser.add_argument("--kills", type=int, default=2, help="SIGKILL + restart of the gateway")
    parser.add_argument(
        "--burst-every", type=float, default=60.0, help="seconds between 1303 bursts"
    )
    parser.add_argument("--burst-seconds", type=float, default=5.0)
    parser.add_argument(
        "--callbacks",
        action="store_true",
        help="KGW_PUBLIC_BASE_URL set: inbound Kling callbacks too",
    )
    parser.add_argument("--render", type=float, default=5.0, help="simulator processing seconds")
    parser.add_argument(
        "--client-timeout",
        type=float,
        default=1.5,
        help="below the gateway's 2 s upstream timeout: hung creates are retried while still in "
        "flight",
    )
    parser.add_argument(
        "--give-up", type=float, default=120.0, help="a client stops retrying a create"
    )
    parser.add_argument("--drain", type=float, default=300.0, help="bound on the final wait")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (DB, gateway log)")
    parser.add_argument("--json", type=Path, help="write figures and invariants here")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="kgw-soak-"))
    verdict, info = asyncio.run(soak(args, tmp))
    print(report(verdict, info))
    if args.json is not None:
        doc = {"args": vars(args) | {"json": str(args.json)}, **info, "figures": verdict.figures}
        doc["invariants"] = verdict.must_be_zero
        doc["examples"] = dict(verdict.examples)
        args.json.write_text(json.dumps(doc, indent=1, default=str) + "\n")
    if args.keep:
        print(f"kept {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    raise SystemExit(1 if verdict.failed else 0)


if __name__ == "__main__":
    main()
