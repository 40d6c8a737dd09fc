"""``kling-gateway serve``: one process that migrates, bootstraps, and serves the gateway — plus the
built-in simulator on its own port when no Kling credentials are configured.

Both sockets are bound first; then the gateway is opened and bootstrapped and the banner printed.
Both uvicorn servers share one event loop and stop together; Ctrl-C ends both cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import socket
from collections.abc import Generator
from typing import Any

import typer
import uvicorn

from ..console.auth import bootstrap_token
from ..http.app import create_app
from ..observability.logs import batch_on_loop
from ..services import admin
from ..services.gateway import Gateway
from ..settings import Settings
from ..upstream.simulator import SimulatorConfig, create_simulator_app
from .common import print_console, print_key
from .listen import bind_all, wanted
from .preflight import open_gateway


class _QuietServer(uvicorn.Server):
    """A server that leaves signal handling to ``_Stopper``."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


async def _serve(settings: Settings) -> None:
    detach = batch_on_loop(asyncio.get_running_loop())  # log lines: one write per turn of the loop
    try:
        await _serve_batched(settings)
    finally:
        detach()


class _Stopper:
    """SIGINT/SIGTERM, owned from the first moment of serve (uvicorn would re-raise them after its
    server stops, cutting the other server's shutdown short): the first stops every server
    gracefully, even one not started yet; the second stops them at once."""

    def __init__(self) -> None:
        self.servers: list[uvicorn.Server] = []
        self.signalled = False

    def add(self, server: uvicorn.Server) -> uvicorn.Server:
        server.should_exit = self.signalled
        self.servers.append(server)
        return server

    def stop(self) -> None:
        for server in self.servers:
            server.should_exit = True

    def on_signal(self) -> None:
        for server in self.servers:
            server.force_exit = server.should_exit
        self.signalled = True
        self.stop()


async def _serve_batched(settings: Settings) -> None:
    sockets = bind_all(wanted(settings))  # first: a taken port leaves no state and prints no key
    stopper = _Stopper()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopper.on_signal)
    try:
        gw = await open_gateway(settings, setup=True)  # one build: bootstrapped, then served
        try:
            issued = await admin.bootstrap(gw)
            console_token = await bootstrap_token(gw)
        except BaseException:
            await gw.aclose()
            raise
        print_banner(
            settings, issued, console_token=console_token
        )  # the sockets listen already: the curl lines work at once
        # Everything built so far (modules, app, gateway) lives as long as the process: out of the
        # collector's sight, so full collections under load scan only request garbage.
        gc.freeze()
        await _run_servers(settings, gw, sockets, stopper)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        for sock in sockets:
            sock.close()


def print_banner(
    settings: Settings,
    issued: admin.IssuedKey | None,
    workers: int = 1,
    *,
    console_token: str | None = None,
) -> None:
    """The first start's key and operator token (once each), else how to get them; then where the
    gateway listens."""
    base_url = f"http://{settings.host}:{settings.port}"
    if issued is not None:
        typer.echo("First start: created user 'default'.")
        print_key(issued, base_url)
    else:
        typer.echo(f"A key for user 'default': kling-gateway keys create {admin.BOOTSTRAP_USER}")
    print_console(base_url, console_token, env_token=settings.admin_token is not None)
    upstream = (
        f"built-in simulator on http://127.0.0.1:{settings.simulator_port}"
        if settings.use_simulator
        else settings.kling_base_url
    )
    processes = f", {workers} worker processes" if workers > 1 else ""
    docs = f"{base_url}/docs"
    typer.echo(f"kling-gateway on {base_url} (upstream: {upstream}; docs: {docs}{processes})")


def _server(app: Any, host: str, port: int) -> _QuietServer:
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", log_config=None)
    return _QuietServer(config)


async def _run_servers(
    settings: Settings, gw: Gateway, sockets: list[socket.socket], stopper: _Stopper
) -> None:
    """The app's lifespan takes ``gw`` over and closes it; either server ending stops the other."""
    app = create_app(settings, gateway=gw)
    servers = [stopper.add(_server(app, settings.host, settings.port))]
    if len(sockets) > 1:
        sim_config = SimulatorConfig(public_base_url=f"http://127.0.0.1:{settings.simulator_port}")
        sim_app = create_simulator_app(sim_config)
        servers.append(stopper.add(_server(sim_app, "127.0.0.1", settings.simulator_port)))
    pairs = zip(servers, sockets, strict=True)
    tasks = [asyncio.ensure_future(server.serve(sockets=[sock])) for server, sock in pairs]
    await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    stopper.stop()
    await asyncio.gather(*tasks)


def run_serve(settings: Settings) -> None:
    """Serve on uvloop, as ``uvicorn.run`` would pick (``loop="auto"``): ``Server.serve`` runs on
    whatever loop it is given, and the stdlib loop's own Python is a large share of the gateway's
    CPU under load (docs/benchmarks.md)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - a pinned dependency; the stdlib loop still works
        asyncio.run(_serve(settings))
        return
    uvloop.run(_serve(settings))
