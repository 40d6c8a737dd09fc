"""Submits and GETs through the gateway vs straight to the built-in simulator, driven by wrk.

    python bench/load.py [--seconds 15] [--connections 20] [--repeat 3] [--json F] [--plot F]

The simulator (`kling-gateway simulator`) and the gateway (`kling-gateway serve`, 1 worker, SQLite in a
temp dir, money on, limits off, upstream = that simulator) run as separate processes; wrk (Lua scripts
from bench/wrk.py) drives each in turn. Cores, on a 2-core box: the gateway lives on core 0 and wrk on
core 1; the simulator is moved to core 0 while it is measured directly and to core 1 while it serves as
the gateway's upstream, so the server under test always has core 0 to itself (other tenants aside).

Phases per repeat and connection count, interleaved so drift hits both sides alike: simulator submit
and GET flat out, gateway submit, simulator submit held to the gateway's rate, gateway GET, simulator
GET held to the gateway's rate (GETs cycle over ids created just before; the simulator's in-memory
store is emptied before each submit phase). Added latency is read against the simulator at the
gateway's rate: flat out, the simulator runs ~10× faster and its tail is its own GC pauses. Each phase
has a short warm-up. The refresher is held off (first poll in an hour) so submits measure the request
path; bench/tracking.py measures tracking. For each gateway phase the gateway's own time per request is
also read from its access log (total minus ``upstream_ms``, the time spent waiting on the simulator), so
the latency it adds is seen apart from the simulator's tail. Also reported: gateway RSS idle and peak
under load, time from process start to ``/readyz`` answering 200 (fresh DB = first start incl. migrations
and bootstrap; and a restart on the existing DB), and the venv's size. Not part of the test run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
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
from wrk import WrkResult, get_script, pinned, post_script, run_wrk

GATEWAY_CORE, WRK_CORE = 0, 1
BODY = orjson.dumps({"model_name": "kling-v2-6", "prompt": "A red fox in fresh snow", "duration": "5"})
TARGETS = {"submit_rps": 1500.0, "get_rps": 3000.0, "added_p99_ms": 5.0, "rss_mb": 150.0, "ready_s": 1.5}
# "sim-paced": the simulator again, held by wrk's delay() to the rate the gateway just reached, so the
# latency the gateway adds is read at equal load (flat out, the simulator runs 10× faster and its p99
# is then its own GC pauses, not a baseline).
# "…-target": both sides held to the target submit rate (1,500/s): the latency the gateway adds when it
# is not saturated, next to what it adds flat out (where a closed loop of c clients is mostly queueing).
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
        """Forget the simulator's tasks before each submit phase: its store holds every task in memory,
        and at >10k creates/s the growing heap's GC pauses would otherwise show up in the p99 of every
        later phase on either side (the gateway's creates call it)."""
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
            url = f"http://127.0.0.1:{self.sim_port}/v1/videos/text2video?pageNum={page}&pageSize=500"
            ids += [t["task_id"] for t in httpx.get(url, headers=headers, timeout=30).json()["data"]]
        return ids[:wanted]

    def gateway_ids(self, wanted: int) -> list[str]:
        with contextlib.closing(sqlite3.connect(f"file:{self.tmp}/gw.db?mode=ro", uri=True)) as conn:
            rows = conn.execute("SELECT id FROM tasks ORDER BY id DESC LIMIT ?", (wanted,)).fetchall()
        return [r[0] for r in rows]


def own_time(log: Path, offset: int) -> dict[str, float]:
    """The gateway's side of the requests logged after ``offset``, from its JSON access lines: total time
    in the gateway, time waiting on the simulator (``upstream_ms``), and the difference — the latency the
    gateway itself adds, per request, whatever the simulator's own tail was (on two cores it shares one
    with wrk during gateway phases, which a wrk-side difference of p99s would charge to the gateway)."""
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
    rig: Rig, phase: str, conns: int, gap_ms: int | None, args: argparse.Namespace, load_rss: list[float]
) -> tuple[WrkResult, list[str], dict[str, float] | None]:
    side, op = phase.split()
    if op == "submit":
        rig.reset_simulator()
    url, script = rig.target(phase, gap_ms)
    # the server under test gets core 0; as the gateway's upstream the simulator shares wrk's core
    move_to(rig.sim.pid, WRK_CORE if side in GATEWAY_SIDES else GATEWAY_CORE)
    run_wrk(url, script, connections=conns, seconds=args.warmup, threads=args.threads, core=WRK_CORE)
    gateway = side in GATEWAY_SIDES
    sampling = peak_rss(rig.gw.pid, load_rss) if gateway else contextlib.nullcontext()
    offset = rig.log.stat().st_size
    with sampling:
        result, cmd = run_wrk(
            url, script, connections=conns, seconds=args.seconds, threads=args.threads, core=WRK_CORE
        )
    server = own_time(rig.log, offset) if gateway else None
    if op == "submit":
        rig.save_ids(side, args.ids)
    return result, cmd, server


def time_to_ready(tmp: Path, sim_port: int, runs: int, fresh: bool) -> list[float]:
    """Seconds from ``Popen`` to ``/readyz`` = 200, pinned like the measured gateway. ``fresh``: a new
    DB each time (first start: migrations + bootstrap); else restarts on one DB that already exists."""
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
    return times[1:] if not fresh and len(times) > 1 else times  # restart: the first run made the DB


def summarise(results: dict[str, list[WrkResult]]) -> dict[str, dict[str, float]]:
    """Median of each figure over the repeats, plus the spread of throughput (min, max)."""
    out: dict[str, dict[str, float]] = {}
    for name, runs in results.items():
        out[name] = {
            "rps": statistics.median(r.rps for r in runs),
            "rps_min": min(r.rps for r in runs),
            "rps_max": max(r.rps for r in runs),
            "p50_ms": statistics.median(r.p50_ms for r in runs),
            "p99_ms": statistics.median(r.p99_ms for r in runs),
            "p99_ms_max": max(r.p99_ms for r in runs),
            "errors": sum(r.errors for r in runs),
            "requests": sum(r.requests for r in runs),
        }
    return out


# A fixed piece of pure Python, timed in a child pinned to the gateway's core. The two shared cores of
# these machines have run the same code 3× faster or slower from one day to the next (other tenants on the
# host; loadavg inside the VM does not show it), so each run records how fast its core was.
CALIBRATION = (
    "import time\nt=time.perf_counter()\nx=0\nfor i in range(3_000_000): x+=i\nprint(time.perf_counter()-t)"
)


def calibrate(runs: int = 3) -> float:
    """Median milliseconds of ``CALIBRATION`` on the gateway's core; compare runs by it, not by date."""
    times = [
        float(subprocess.check_output(pinned([sys.executable, "-c", CALIBRATION], GATEWAY_CORE))) * 1000
        for _ in range(runs)
    ]
    return statistics.median(times)


def measure(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    load_before = os.getloadavg()[0]  # other tenants' load: the noise these figures carry
    calibration_before = calibrate()
    sim_port, gw_port = free_port(), free_port()
    sim = subprocess.Popen(
        pinned(simulator_cmd(sim_port), WRK_CORE), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    log = tmp / "gateway.log"
    env = gateway_env(tmp, sim_port, gw_port, KGW_FIRST_POLL_SECONDS="3600")
    gw: subprocess.Popen[bytes] | None = None
    try:
        wait_http(f"http://127.0.0.1:{sim_port}/__sim/stats")
        t0 = time.perf_counter()
        with log.open("w") as out:
            gw = subprocess.Popen(pinned([str(BIN), "serve"], GATEWAY_CORE), env=env, stdout=out, stderr=out)
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
            sim_headers={"Authorization": f"Bearer {sim_token()}", "Content-Type": "application/json"},
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
                        f"  p50 {result.p50_ms:6.2f} ms  p99 {result.p99_ms:6.2f} ms  errors {result.errors}"
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


def report(r: dict[str, Any], connections: list[int]) -> list[str]:
    """Human-readable lines: the table, ratios, added p99 and each target met or not."""
    ph = r["phases"]
    lines = []
    if "calibration_ms_before_after" in r:
        before, after = r["calibration_ms_before_after"]
        lines.append(
            f"machine: calibration loop {before:.0f} ms before, {after:.0f} ms after (lower = faster core)"
        )
    lines.append(f"{'phase':<26}{'req/s (min–max)':>24}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}")
    for name, s in ph.items():
        spread = f"{s['rps']:.0f} ({s['rps_min']:.0f}–{s['rps_max']:.0f})"
        lines.append(f"{name:<26}{spread:>24}{s['p50_ms']:>9.2f}{s['p99_ms']:>9.2f}{s['errors']:>8}")
    met: dict[str, bool] = {}
    for c in connections:
        for op in ("submit", "get"):
            g, flat = ph[f"gateway {op} c={c}"], ph[f"simulator {op} c={c}"]
            paced = ph.get(f"sim-paced {op} c={c}")  # none at c=1: the flat-out run is the baseline
            base = paced or flat
            added_flat, added = g["p99_ms"] - flat["p99_ms"], g["p99_ms"] - base["p99_ms"]
            at_rate = f"{added:+.2f} ms vs the simulator at the gateway's rate ({base['rps']:.0f}/s), "
            lines.append(
                f"c={c} {op}: throughput gateway/simulator {g['rps'] / flat['rps']:.2f}; added p99 "
                f"{at_rate if paced else ''}{added_flat:+.2f} ms vs flat out; "
                f"added p50 {g['p50_ms'] - base['p50_ms']:+.2f} ms"
            )
            if c == 20:
                met[f"{op} ≥ {TARGETS[op + '_rps']:.0f}/s"] = g["rps"] >= TARGETS[op + "_rps"]
                name = f"added p99 {op} ≤ {TARGETS['added_p99_ms']:g} ms (equal rate, gateway saturated)"
                met[name] = added <= TARGETS["added_p99_ms"]
        g_t, s_t = ph.get(f"gateway-target submit c={c}"), ph.get(f"sim-target submit c={c}")
        if g_t is not None and s_t is not None:
            added_t = g_t["p99_ms"] - s_t["p99_ms"]
            rate = f"{r.get('held_rate', TARGETS['submit_rps']):.0f}/s"
            lines.append(
                f"c={c} submit, both held to {rate} "
                f"(gateway {g_t['rps']:.0f}/s, simulator {s_t['rps']:.0f}/s): "
                f"added p99 {added_t:+.2f} ms, added p50 {g_t['p50_ms'] - s_t['p50_ms']:+.2f} ms"
            )
            if c == 20:
                name = f"added p99 submit ≤ {TARGETS['added_p99_ms']:g} ms (both at {rate})"
                met[name] = added_t <= TARGETS["added_p99_ms"]
    for name, own in r.get("gateway_own", {}).items():
        lines.append(
            f"{name}: the gateway's own time per request (access log, total − upstream_ms): "
            f"p50 {own['own_p50_ms']:.2f} ms, p99 {own['own_p99_ms']:.2f} ms "
            f"(total p99 {own['total_p99_ms']:.2f}, upstream p99 {own['upstream_p99_ms']:.2f}; "
            f"{own['n']:.0f} requests)"
        )
        if name.endswith("c=20") and name.startswith(("gateway-target submit", "gateway get")):
            op = name.split()[1]
            met[f"added p99 {op} ≤ {TARGETS['added_p99_ms']:g} ms (the gateway's own time)"] = (
                own["own_p99_ms"] <= TARGETS["added_p99_ms"]
            )
    first, restart = statistics.median(r["ready_first_start_s"]), statistics.median(r["ready_restart_s"])
    lines.append(f"gateway RSS idle {r['rss_idle_mb']:.0f} MB, peak under load {r['rss_load_mb']:.0f} MB")
    lines.append(
        f"start → /readyz 200: first start (fresh DB) median {first:.2f} s "
        f"{[round(x, 2) for x in r['ready_first_start_s']]}; restart median {restart:.2f} s "
        f"{[round(x, 2) for x in r['ready_restart_s']]}"
    )
    lines.append(f"venv size {r['venv_mb']:.0f} MB")
    met[f"RSS ≤ {TARGETS['rss_mb']:g} MB"] = r["rss_load_mb"] <= TARGETS["rss_mb"]
    met[f"ready ≤ {TARGETS['ready_s']:g} s (restart)"] = restart <= TARGETS["ready_s"]
    met[f"ready ≤ {TARGETS['ready_s']:g} s (first start)"] = first <= TARGETS["ready_s"]
    lines += [f"target {name}: {'met' if ok else 'NOT met'}" for name, ok in met.items()]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=15.0, help="measured seconds per phase")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before each phase")
    parser.add_argument(
        "--connections", type=lambda v: [int(x) for x in v.split(",")], default=[20], help="e.g. 1,20,50"
    )
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (all on wrk's one core)")
    parser.add_argument("--repeat", type=int, default=3, help="interleaved repeats; medians are reported")
    parser.add_argument(
        "--held-rate",
        type=float,
        default=TARGETS["submit_rps"],
        help="submits/s both sides are held to in the *-target phases (a slow host: below its capacity)",
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
