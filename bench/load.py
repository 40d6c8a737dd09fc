"""Submits and GETs through the gateway vs straight to the built-in simulator, driven by wrk.

    python bench/load.py [--seconds 15] [--connections 20] [--repeat 3] [--json F] [--plot F]

The simulator (`kling-gateway simulator`) and the gateway (`kling-gateway serve`, 1
worker, SQLite in a temp dir, money on, limits off, upstream = that simulator) run as
separate processes; wrk (Lua scripts from bench/wrk.py) drives each in turn. Cores, on
a 2-core box: the gateway lives on core 0 and wrk on core 1; the simulator is moved to
core 0 while it is measured directly and to core 1 while it serves as the gateway's
upstream, so the server under test always has core 0 to itself (other tenants aside).

Phases per repeat and connection count, interleaved so drift hits both sides alike: simulator
submit and GET flat out, gateway submit, simulator submit held to the gateway's rate, gateway
GET, simulator GET held to the gateway's rate (GETs cycle over ids created just before; the
simulator's in-memory store is emptied before each submit phase). Added latency is read against
the simulator at the gateway's rate: flat out, the simulator runs ~10× faster and its tail is
its own GC pauses. Each phase has a short warm-up. The refresher is held off (first poll in an
hour) so submits measure the request path; bench/tracking.py measures tracking. For each
gateway phase the gateway's own time per request is also read from its access log (total minus
``upstream_ms``, the time spent waiting on the simulator), so the latency it adds is seen apart
from the simulator's tail. Also reported: gateway RSS idle and peak under load, time from
process start to ``/readyz`` answering 200 (fresh DB = first start incl. migrations and
bootstrap; and a restart on the existing DB), and the venv's size. Not part of the test run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from load_report import TARGETS, report, summarise
from load_rig import GATEWAY_SIDES, Rig, move_to, peak_rss
from procstats import (
    BIN,
    bootstrap_key,
    free_port,
    gateway_env,
    pct,
    rss_mb,
    sim_token,
    simulator_cmd,
    venv_mb,
    wait_http,
)
from wrk import WrkResult, pinned, run_wrk

GATEWAY_CORE, WRK_CORE = 0, 1
# "sim-paced": the simulator again, held by wrk's delay() to the rate the gateway just reached, so
# the latency the gateway adds is read at equal load (flat out, the simulator runs 10× faster and
# its p99 is then its own GC pauses, not a baseline).
# "…-target": both sides held to the target submit rate (1,500/s): the latency the gateway adds
# when it is not saturated, next to what it adds flat out (where a closed loop of c clients is
# mostly queueing).
PHASES = (
    "simulator submit",
    "simulator get",
    "gateway submit",
    "sim-paced submit",
    "gateway get",
    "sim-paced get",
    "gateway-target submit",
    "sim-target submit",
)


def own_time(log: Path, offset: int) -> dict[str, float]:
    """The gateway's side of the requests logged after ``offset``, from its JSON access lines: total
    time in the gateway, time waiting on the simulator (``upstream_ms``), and the difference — the
    latency the gateway itself adds, per request, whatever the simulator's own tail was (on two
    cores it shares one with wrk during gateway phases, which a wrk-side difference of p99s would
    charge to the gateway)."""
    total: list[float] = []
    own: list[float] = []
    upstream: list[float] = []
    with log.open("rb") as f:
        f.seek(offset)
        for line in f:
            if not line.startswith(b"{") or b'"msg":"request"' not in line:
                continue
            rec = orjson.loads(line)
            if rec.get("route") == "unmatched":
                continue
            up = float(rec.get("upstream_ms", 0.0))
            total.append(rec["latency_ms"])
            upstream.append(up)
            own.append(rec["latency_ms"] - up)
    return {
        "n": float(len(total)),
        "total_p50_ms": pct(total, 0.5),
        "total_p99_ms": pct(total, 0.99),
        "upstream_p99_ms": pct(upstream, 0.99),
        "own_p50_ms": pct(own, 0.5),
        "own_p99_ms": pct(own, 0.99),
    }


def run_phase(
    rig: Rig,
    phase: str,
    conns: int,
    gap_ms: int | None,
    args: argparse.Namespace,
    load_rss: list[float],
) -> tuple[WrkResult, list[str], dict[str, float] | None]:
    side, op = phase.split()
    if op == "submit":
        rig.reset_simulator()
    url, script = rig.target(phase, gap_ms)
    # the server under test gets core 0; as the gateway's upstream the simulator shares wrk's core
    move_to(rig.sim.pid, WRK_CORE if side in GATEWAY_SIDES else GATEWAY_CORE)
    run_wrk(
        url, script, connections=conns, seconds=args.warmup, threads=args.threads, core=WRK_CORE
    )
    gateway = side in GATEWAY_SIDES
    sampling = peak_rss(rig.gw.pid, load_rss) if gateway else contextlib.nullcontext()
    offset = rig.log.stat().st_size
    with sampling:
        result, cmd = run_wrk(
            url,
            script,
            connections=conns,
            seconds=args.seconds,
            threads=args.threads,
            core=WRK_CORE,
        )
    server = own_time(rig.log, offset) if gateway else None
    if op == "submit":
        rig.save_ids(side, args.ids)
    return result, cmd, server


def time_to_ready(tmp: Path, sim_port: int, runs: int, fresh: bool) -> list[float]:
    """Seconds from ``Popen`` to ``/readyz`` = 200, pinned like the measured gateway.
    ``fresh``: a new DB each time (first start: migrations + bootstrap); else
    restarts on one DB that already exists."""
    times: list[float] = []
    for i in range(runs):
        home = tmp / (f"fresh{i}" if fresh else "restart")
        home.mkdir(exist_ok=True)
        port = free_port()
        env = gateway_env(home, sim_port, port)
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            pinned([str(BIN), "serve"], GATEWAY_CORE),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_http(f"http://127.0.0.1:{port}/readyz")
            times.append(time.perf_counter() - t0)
        finally:
            proc.terminate()
            proc.wait(20)
    # restart: the first run made the DB
    return times[1:] if not fresh and len(times) > 1 else times


# A fixed piece of pure Python, timed in a child pinned to the gateway's core. The
# two shared cores of these machines have run the same code 3× faster or slower from
# one day to the next (other tenants on the host; loadavg inside the VM does not show
# it), so each run records how fast its core was.
CALIBRATION = (
    "import time\nt=time.perf_counter()\nx=0\n"
    "for i in range(3_000_000): x+=i\nprint(time.perf_counter()-t)"
)


def calibrate(runs: int = 3) -> float:
    """Median milliseconds of ``CALIBRATION`` on the gateway's core; compare runs by
    it, not by date."""
    times = [
        float(subprocess.check_output(pinned([sys.executable, "-c", CALIBRATION], GATEWAY_CORE)))
        * 1000
        for _ in range(runs)
    ]
    return statistics.median(times)


def measure(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    load_before = os.getloadavg()[0]  # other tenants' load: the noise these figures carry
    calibration_before = calibrate()
    sim_port, gw_port = free_port(), free_port()
    sim = subprocess.Popen(
        pinned(simulator_cmd(sim_port), WRK_CORE),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    log = tmp / "gateway.log"
    env = gateway_env(tmp, sim_port, gw_port, KGW_FIRST_POLL_SECONDS="3600")
    gw: subprocess.Popen[bytes] | None = None
    try:
        wait_http(f"http://127.0.0.1:{sim_port}/__sim/stats")
        t0 = time.perf_counter()
        with log.open("w") as out:
            gw = subprocess.Popen(
                pinned([str(BIN), "serve"], GATEWAY_CORE), env=env, stdout=out, stderr=out
            )
        wait_http(f"http://127.0.0.1:{gw_port}/readyz")
        first_ready = time.perf_counter() - t0
        key = bootstrap_key(log)
        time.sleep(2)  # let start-up garbage settle before calling it idle
        idle_rss = rss_mb(gw.pid)
        rig = Rig(
            tmp,
            sim,
            gw,
            sim_port,
            gw_port,
            sim_headers={
                "Authorization": f"Bearer {sim_token()}",
                "Content-Type": "application/json",
            },
            gw_headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
            log=log,
        )
        results: dict[str, list[WrkResult]] = {}
        servers: dict[str, list[dict[str, float]]] = {}
        commands: dict[str, str] = {}
        load_rss: list[float] = []
        for rep in range(args.repeat):
            for conns in args.connections:
                done: dict[str, WrkResult] = {}
                for phase in PHASES:
                    gap_ms = None
                    if phase.startswith(("sim-paced", "gateway-target", "sim-target")):
                        if conns < 2:  # one connection: no queueing, nothing to pace
                            continue
                        rate = (
                            done["gateway " + phase.split()[1]].rps
                            if phase.startswith("sim-paced")
                            else args.held_rate
                        )
                        gap_ms = max(1, round(conns * 1000 / rate))
                    result, cmd, server = run_phase(rig, phase, conns, gap_ms, args, load_rss)
                    done[phase] = result
                    name = f"{phase} c={conns}"
                    results.setdefault(name, []).append(result)
                    if server is not None:
                        servers.setdefault(name, []).append(server)
                    commands[name] = shlex.join(cmd)
                    print(
                        f"[{rep + 1}/{args.repeat}] {name:<24} {result.rps:8.0f}/s"
                        f"  p50 {result.p50_ms:6.2f} ms  p99 {result.p99_ms:6.2f} ms  errors "
                        f"{result.errors}"
                        + (
                            f"  | gateway's own p50 {server['own_p50_ms']:.2f}"
                            f" p99 {server['own_p99_ms']:.2f} ms"
                            if server
                            else ""
                        ),
                        flush=True,
                    )
        gw.terminate()
        gw.wait(20)
        gw = None
        ready_fresh = time_to_ready(tmp, sim_port, args.ready_runs, fresh=True)
        ready_restart = time_to_ready(tmp, sim_port, args.ready_runs + 1, fresh=False)
    finally:
        for proc in (gw, sim):
            if proc is not None:
                proc.terminate()
                proc.wait(20)
    return {
        "when": time.strftime("%Y-%m-%d %H:%M"),
        "loadavg_1m_before_after": [load_before, os.getloadavg()[0]],
        "calibration_ms_before_after": [calibration_before, calibrate()],
        "cores": sorted(os.sched_getaffinity(0)),
        "seconds": args.seconds,
        "held_rate": args.held_rate,
        "repeat": args.repeat,
        "phases": summarise(results),
        "gateway_own": {
            name: {k: statistics.median(run[k] for run in runs) for k in runs[0]}
            for name, runs in servers.items()
        },
        "commands": commands,
        "rss_idle_mb": idle_rss,
        "rss_load_mb": max(load_rss),
        "ready_first_start_s": [first_ready, *ready_fresh],
        "ready_restart_s": ready_restart,
        "venv_mb": venv_mb(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=15.0, help="measured seconds per phase")
    parser.add_argument(
        "--warmup", type=float, default=2.0, help="unmeasured seconds before each phase"
    )
    parser.add_argument(
        "--connections",
        type=lambda v: [int(x) for x in v.split(",")],
        default=[20],
        help="e.g. 1,20,50",
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="wrk threads (all on wrk's one core)"
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="interleaved repeats; medians are reported"
    )
    parser.add_argument(
        "--held-rate",
        type=float,
        default=TARGETS["submit_rps"],
        help="submits/s both sides are held to in the *-target phases (a slow host: below its "
        "capacity)",
    )
    parser.add_argument("--ids", type=int, default=5000, help="task ids the GET phases cycle over")
    parser.add_argument("--ready-runs", type=int, default=5)
    parser.add_argument("--json", type=Path, default=Path("docs/img/load.json"))
    parser.add_argument("--plot", default="docs/img/load.png", help="'' for none")
    parser.add_argument("--from-json", type=Path, help="no measuring: report and plot a stored run")
    args = parser.parse_args()
    if args.from_json is not None:
        result = json.loads(args.from_json.read_text())
        args.connections = sorted({int(name.rsplit("=", 1)[1]) for name in result["phases"]})
    else:
        with tempfile.TemporaryDirectory(prefix="kgw-load-") as tmp:
            result = measure(args, Path(tmp))
    lines = report(result, args.connections)
    print("\n".join(lines))
    result["report"] = lines
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1) + "\n")
    if args.plot:  # a str: Path("") would be ".", and matplotlib would write "./.png"
        from loadplot import plot  # matplotlib: the `bench` extra, only needed here

        plot(result, Path(args.plot))
        print(f"wrote {args.json} and {args.plot}")


if __name__ == "__main__":
    main()
