"""A real gateway and simulator on free loopback ports, served by uvicorn on a background thread, as
``kling-gateway serve`` runs them — for the browser, which needs real sockets."""

from __future__ import annotations

import asyncio
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from kling_gateway.cli.preflight import open_gateway
from kling_gateway.console.auth import bootstrap_token
from kling_gateway.http.app import create_app
from kling_gateway.services import admin
from kling_gateway.upstream.simulator import SimulatorConfig, create_simulator_app
from tests.conftest import make_settings

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@dataclass
class Served:
    base_url: str
    token: str
    user_key: str
    stop: threading.Event


def _socket() -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # not the main thread: signals are the runner's
        pass


def _server(app: Any) -> _Server:
    return _Server(uvicorn.Config(app, log_level="warning", log_config=None, lifespan="on"))


def serve(tmp: Path, **overrides: Any) -> Served:
    """Start both servers; return once the gateway answers. ``stop`` ends them."""
    gw_sock, sim_sock = _socket(), _socket()
    gw_port, sim_port = gw_sock.getsockname()[1], sim_sock.getsockname()[1]
    settings = make_settings(
        tmp,
        port=gw_port,
        simulator_port=sim_port,
        first_poll_seconds=0.3,
        max_poll_seconds=0.5,
        upstream_read_timeout=5.0,
        **overrides,
    )
    sim_config = SimulatorConfig(
        submitted_seconds=0.3,
        processing_seconds=0.7,
        public_base_url=f"http://127.0.0.1:{sim_port}",
    )
    ready: dict[str, Any] = {}
    started, stop = threading.Event(), threading.Event()

    async def main() -> None:
        gw = await open_gateway(settings, setup=True)
        issued = await admin.bootstrap(gw)
        ready["token"] = await bootstrap_token(gw)
        ready["key"] = issued.api_key if issued else ""
        servers = [
            _server(create_app(settings, gateway=gw)),
            _server(create_simulator_app(sim_config)),
        ]
        tasks = [
            asyncio.ensure_future(s.serve(sockets=[sock]))
            for s, sock in zip(servers, (gw_sock, sim_sock), strict=True)
        ]
        while not all(s.started for s in servers):  # noqa: ASYNC110 - uvicorn has no "started" event
            await asyncio.sleep(0.02)
        started.set()
        await asyncio.to_thread(stop.wait)
        for s in servers:
            s.should_exit = True
        await asyncio.gather(*tasks)

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:  # surfaced to the test instead of dying silently on the thread
            ready["error"] = exc
            started.set()

    threading.Thread(target=run, name="console-test-servers", daemon=True).start()
    if not started.wait(30) or "error" in ready:
        raise RuntimeError(f"gateway did not start: {ready.get('error')!r}")
    return Served(f"http://127.0.0.1:{gw_port}", ready["token"] or "", ready["key"], stop)
