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
