"""``kling-gateway serve --workers 2``: two gateway processes, one port, one simulator, one DB."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent / "kling-gateway"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def test_two_workers_share_the_port_and_finish_every_task(tmp_path: Path) -> None:
    port, sim_port = _free_port(), _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("KGW_")},
        "KGW_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/gw.db",
        "KGW_MASTER_KEY_FILE": str(tmp_path / "master.key"),
        "KGW_SIMULATOR_PORT": str(sim_port),
        "KGW_FIRST_POLL_SECONDS": "0.5",
        "KGW_MAX_POLL_SECONDS": "1",
    }
    log = (tmp_path / "serve.log").open("w+")
    proc = subprocess.Popen(
        [str(BIN), "serve", "--workers", "2", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        key = None
        while time.monotonic() < deadline:
            log.seek(0)
            found = re.search(r"sk-[A-Za-z0-9_\-]{20,}", log.read())
            if found:
                key = found.group(0)
                try:
                    if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
            assert proc.poll() is None, log.read()
            time.sleep(0.2)
        assert key is not None
        # the supervisor, the simulator and two workers (uvicorn may add a resource tracker)
        assert len(_children(proc.pid)) >= 3
        auth = {"Authorization": f"Bearer {key}"}
        ids = []
        with httpx.Client(base_url=base, headers=auth, timeout=10) as client:
            for i in range(12):
                res = client.post(
                    "/kling/v1/videos/text2video",
                    json={
                        "model_name": "kling-v2-6",
                        "prompt": f"fox {i}",
                        "external_task_id": f"w-{i}",
                    },
                )
                assert res.status_code == 200, res.text
                ids.append(res.json()["data"]["task_id"])
            deadline = time.monotonic() + 40
            pending = set(ids)
            while pending and time.monotonic() < deadline:
                for task_id in list(pending):
                    if (
                        client.get(f"/kling/v1/videos/text2video/{task_id}").json()["data"][
                            "task_status"
                        ]
                        == "succeed"
                    ):
                        pending.discard(task_id)
                time.sleep(0.5)
            assert not pending
            stats = httpx.get(f"http://127.0.0.1:{sim_port}/__sim/stats", timeout=5).json()["data"]
        assert stats["tasks_created"] == 12 and stats["duplicates_refused"] == 0
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()
