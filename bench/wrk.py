"""Driving wrk (Debian's ``wrk`` package) from Python: Lua scripts for our two request shapes, core
pinning, and the figures its ``done()`` hook prints as one JSON line.

wrk rather than a Python client because a Python load generator on a 2-core box spends as much CPU
as the server it measures; wrk's C event loop needs a few percent of a core for thousands of
requests/s, and its latency histogram is exact (HdrHistogram) up to the percentiles we report.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

WRK = shutil.which("wrk")

# done() runs once after all threads finish; percentiles are in microseconds. One tagged line, so
# the human-readable report wrk prints above it can stay (it is useful when a run looks odd).
_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d,"mean":%.1f}\\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max, latency.mean))
end
"""


def _lua_string(text: str) -> str:
    """A Lua long-bracket literal: no escaping rules to get wrong for JSON bodies or tokens."""
    level = 0
    while f"]{'=' * level}]" in text:
        level += 1
    eq = "=" * level
    return f"[{eq}[{text}]{eq}]"


def _pace(gap_ms: int | None) -> list[str]:
    """wrk's ``delay()`` hook: each connection waits ``gap_ms`` after an answer
    before its next request, so ``connections`` connections run at about
    ``connections × 1000 / gap_ms`` requests/s. Debian's wrk has no ``-R`` (that is
    wrk2); this is enough to compare two servers at the same request rate."""
    return [f"delay = function() return {gap_ms} end"] if gap_ms else []


def post_script(
    path: Path, body: bytes, headers: dict[str, str], gap_ms: int | None = None
) -> Path:
    """Every request is the same POST; wrk builds it once, so the client costs next to nothing."""
    lines = ['wrk.method = "POST"', f"wrk.body = {_lua_string(body.decode())}", *_pace(gap_ms)]
    lines += [f"wrk.headers[ {_lua_string(k)} ] = {_lua_string(v)}" for k, v in headers.items()]
    path.write_text("\n".join(lines) + "\n" + _DONE)
    return path


def get_script(
    path: Path, prefix: str, ids_file: Path, headers: dict[str, str], gap_ms: int | None = None
) -> Path:
    """GETs cycle over real task ids (read from a file in each wrk thread's Lua state), each thread
    starting at its own offset so threads do not walk the same rows in lockstep."""
    lines = [f"wrk.headers[ {_lua_string(k)} ] = {_lua_string(v)}" for k, v in headers.items()]
    lines += _pace(gap_ms)
    lines += [
        "local paths = {}",
        f"for line in io.lines({_lua_string(str(ids_file))}) do",
        f"  paths[#paths + 1] = {_lua_string(prefix)} .. line",
        "end",
        "local i, threads = 0, 0",
        "setup = function(thread)",
        "  threads = threads + 1",
        '  thread:set("tid", threads)',
        "end",
        "init = function(args)",
        "  i = ((tid or 1) * 7919) % #paths",
        "end",
        "request = function()",
        "  i = i % #paths + 1",
        '  return wrk.format("GET", paths[i])',
        "end",
    ]
    path.write_text("\n".join(lines) + "\n" + _DONE)
    return path


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    errors: int  # socket errors + timeouts + non-2xx/3xx answers
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def pinned(cmd: list[str], core: int | None) -> list[str]:
    """Prefix ``cmd`` with ``taskset -c core`` when pinning is possible (Linux, core exists)."""
    if core is None or core not in os.sched_getaffinity(0) or shutil.which("taskset") is None:
        return cmd
    return ["taskset", "-c", str(core), *cmd]


def run_wrk(
    url: str,
    script: Path,
    *,
    connections: int,
    seconds: float,
    threads: int = 1,
    core: int | None = None,
    timeout_s: float = 10.0,
) -> tuple[WrkResult, list[str]]:
    """Run one wrk measurement; returns the figures and the exact command (for the docs)."""
    if WRK is None:
        raise SystemExit("wrk not found: apt-get install -y wrk")
    threads = max(1, min(threads, connections))
    cmd = pinned(
        [
            WRK,
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds:g}s",
            f"--timeout={timeout_s:g}s",
            "-s",
            str(script),
            url,
        ],
        core,
    )
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    tagged = [line for line in out.splitlines() if line.startswith("WRKJSON ")]
    if not tagged:
        raise SystemExit(f"wrk printed no summary:\n{out}")
    d = json.loads(tagged[-1].removeprefix("WRKJSON "))
    errors = d["connect"] + d["read"] + d["write"] + d["status"] + d["timeout"]
    result = WrkResult(
        requests=d["requests"],
        seconds=d["duration_us"] / 1e6,
        errors=errors,
        p50_ms=d["p50"] / 1000,
        p90_ms=d["p90"] / 1000,
        p99_ms=d["p99"] / 1000,
        max_ms=d["max"] / 1000,
    )
    return result, cmd
