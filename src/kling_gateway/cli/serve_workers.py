"""``kling-gateway serve --workers N``: N gateway processes on one port (uvicorn's process manager).

The parent migrates and bootstraps once, then each worker builds its own gateway from the same
environment (``asgi_factory``): its own pool, key cache and background workers; leases,
compare-and-set writes and the shared database keep them from doing the same work twice. The
built-in simulator, when in use, runs once, as a child process of its own, rather than once per
worker.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

import httpx
import uvicorn
from fastapi import FastAPI

from ..console.auth import bootstrap_token
from ..http.app import create_app
from ..services import admin
from ..settings import Settings
from .listen import bind_all, wanted
from .preflight import open_gateway
from .serve import print_banner


def asgi_factory() -> FastAPI:
    """What each worker process imports (``uvicorn --factory``); settings come from the env."""
    return create_app(Settings())


def _start_simulator(settings: Settings) -> subprocess.Popen[bytes]:
    port = str(settings.simulator_port)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from kling_gateway.cli import main; main()",
            "simulator",
            "--port",
            port,
        ]
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/__sim/stats", timeout=0.5)
            return proc
        except httpx.HTTPError:
            if proc.poll() is not None:
                break
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"the built-in simulator did not start on port {port}")


async def _bootstrap(settings: Settings) -> tuple[admin.IssuedKey | None, str | None]:
    gw = await open_gateway(settings, setup=True)  # migrates and seeds once, before any worker
    try:
        return await admin.bootstrap(gw), await bootstrap_token(gw)
    finally:
        await gw.aclose()


def run_workers(settings: Settings, workers: int) -> None:
    for sock in bind_all(wanted(settings)):  # a taken port: one line, before anything is written
        sock.close()
    issued, console_token = asyncio.run(_bootstrap(settings))
    print_banner(settings, issued, workers, console_token=console_token)
    # Workers re-read settings from the environment: pass the command line's choices down that way.
    os.environ["KGW_HOST"], os.environ["KGW_PORT"] = settings.host, str(settings.port)
    simulator = _start_simulator(settings) if settings.use_simulator else None
    try:
        uvicorn.run(
            "kling_gateway.cli.serve_workers:asgi_factory",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=workers,
            log_level="warning",
            log_config=None,
        )
    finally:
        if simulator is not None:
            simulator.terminate()
            simulator.wait(10)
