"""``kling-gateway worker`` runs the background loops alone and stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent / "kling-gateway"


def test_worker_starts_and_stops_on_sigterm(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "KGW_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/w.db",
        "KGW_MASTER_KEY_FILE": str(tmp_path / "m.key"),
        "KGW_UPSTREAM": "simulator",
    }
    proc = subprocess.Popen(
        [str(BIN), "worker"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 30
        line = ""
        while time.monotonic() < deadline and "worker running" not in line:
            line = proc.stdout.readline()
            assert line or proc.poll() is None, "worker exited early"
        assert "worker running" in line
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    assert (tmp_path / "w.db").exists()
