"""The multinode children never outlive the test process, and a failing test shows their logs."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.multinode
ROOT = Path(__file__).resolve().parents[2]
PROBE = "tests/multinode/probe_children.py"
READY_SECONDS = 90.0


async def _probe(test: str, out: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        f"{PROBE}::{test}",
        cwd=ROOT,
        env={**os.environ, "KGW_TEST_PROBE_OUT": str(out)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )


def running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's zombie waits for an init that may never reap it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def test_sigterm_to_pytest_leaves_no_gateway_or_simulator(tmp_path: Path) -> None:
    out = tmp_path / "pids"
    probe = await _probe("test_hold", out)
    try:
        deadline = time.monotonic() + READY_SECONDS
        while not out.exists():
            assert probe.returncode is None and time.monotonic() < deadline, (
                "the probe never started"
            )
            await asyncio.sleep(0.2)
        pids = [int(p) for p in out.read_text().split()]
        assert len(pids) == 2 and all(running(p) for p in pids), pids
        probe.send_signal(signal.SIGTERM)
        await asyncio.wait_for(probe.communicate(), 30)
        deadline = time.monotonic() + 10.0
        while (left := [p for p in pids if running(p)]) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        assert not left, f"children outlived the SIGTERMed pytest: {left}"
    finally:
        if probe.returncode is None:
            probe.kill()
            await probe.wait()


async def test_a_failing_multinode_test_reports_its_childrens_logs(tmp_path: Path) -> None:
    probe = await _probe("test_fail", tmp_path / "pids")
    output, _ = await asyncio.wait_for(probe.communicate(), READY_SECONDS)
    text = output.decode(errors="replace")
    assert probe.returncode == 1, text
    assert (
        "multinode logs (call)" in text and "--- simulator-0" in text and "--- gateway-0" in text
    ), text
