"""What the benchmarks share: free ports, per-process CPU and RSS from /proc, the simulator's JWT."""

from __future__ import annotations

import os
import socket
import sys
import time
import warnings
from pathlib import Path

import jwt

BIN = Path(sys.executable).parent / "kling-gateway"
TICKS = os.sysconf("SC_CLK_TCK")


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
    """A JWT for the simulator's well-known sim-ak / sim-sk pair (short key: PyJWT's warning is noise)."""
    now = int(time.time())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return jwt.encode({"iss": "sim-ak", "exp": now + ttl, "nbf": now - 5}, "sim-sk", algorithm="HS256")


def gateway_env(tmp: Path, sim_port: int, gw_port: int, **extra: str) -> dict[str, str]:
    """Environment for a `kling-gateway serve` child in front of a simulator child: SQLite in ``tmp``,
    the simulator's well-known credentials, and enough credits for any run (money is on by default)."""
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
