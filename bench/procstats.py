"""What the benchmarks share: free ports, per-process CPU and RSS from /proc, the simulator's JWT,
child process start-up (readiness, bootstrap key) and the venv's size."""

from __future__ import annotations

import http.client
import os
import re
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path
from urllib.parse import urlsplit

import jwt

BIN = Path(sys.executable).parent / "kling-gateway"
TICKS = os.sysconf("SC_CLK_TCK")


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile (``p`` in 0..1); NaN for no values."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))] if ordered else float("nan")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU of one process, so a benchmark's own load client is not counted."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def sim_token(ttl: int = 7200) -> str:
    """A JWT for the simulator's well-known sim-ak / sim-sk pair (short key: PyJWT's
    warning is noise)."""
    now = int(time.time())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return jwt.encode(
            {"iss": "sim-ak", "exp": now + ttl, "nbf": now - 5}, "sim-sk", algorithm="HS256"
        )


def gateway_env(tmp: Path, sim_port: int, gw_port: int, **extra: str) -> dict[str, str]:
    """Environment for a `kling-gateway serve` child in front of a simulator child:
    SQLite in ``tmp``, the simulator's well-known credentials, and enough credits for
    any run (money is on by default)."""
    return {
        **os.environ,
        "KGW_DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/gw.db",
        "KGW_MASTER_KEY_FILE": str(tmp / "master.key"),
        "KGW_KLING_ACCESS_KEY": "sim-ak",
        "KGW_KLING_SECRET_KEY": "sim-sk",
        "KGW_KLING_BASE_URL": f"http://127.0.0.1:{sim_port}",
        "KGW_PORT": str(gw_port),
        "KGW_BOOTSTRAP_CREDITS": "100000000",
        **extra,
    }


def wait_http(url: str, timeout: float = 30.0, interval: float = 0.01) -> float:
    """Seconds until ``url`` answers below 500 (``/readyz`` answers 503 until the DB is reachable).

    Plain ``http.client`` with a fresh connection per try: cheap enough to poll every 10 ms, so the
    time to ready it reports is not padded by the poller itself."""
    parts = urlsplit(url)
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=1.0)
        try:
            conn.request("GET", parts.path or "/")
            if conn.getresponse().status < 500:
                return time.perf_counter() - start
        except OSError:
            pass
        finally:
            conn.close()
        time.sleep(interval)
    raise SystemExit(f"{url} not ready after {timeout}s")


def bootstrap_key(log: Path, timeout: float = 10.0) -> str:
    """The ``sk-…`` key a first-start ``serve`` prints once (the only way to learn it
    from outside)."""
    deadline = time.monotonic() + timeout
    while True:
        match = re.search(r"(sk-[A-Za-z0-9_-]{20,})", log.read_text())
        if match is not None:
            return match.group(1)
        if time.monotonic() > deadline:
            raise SystemExit(f"no bootstrap key in {log}")
        time.sleep(0.05)


def simulator_cmd(port: int, *extra: str) -> list[str]:
    """``kling-gateway simulator`` with no per-model concurrency cap unless ``extra`` sets one."""
    args = list(extra)
    if "--concurrency" not in args:
        args += ["--concurrency", "100000000"]
    return [str(BIN), "simulator", "--port", str(port), *args]


def venv_mb() -> float:
    """Disk size of the running interpreter's venv (``du``, so hard links and sparse
    files count once)."""
    prefix = Path(sys.prefix)
    out = subprocess.run(
        ["du", "-sk", str(prefix)], capture_output=True, text=True, check=True
    ).stdout
    return int(out.split()[0]) / 1024
