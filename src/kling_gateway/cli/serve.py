"""``kling-gateway serve``: one process that migrates, bootstraps, and serves the gateway — plus the
built-in simulator on its own port when no Kling credentials are configured.

Both uvicorn servers share one event loop; only the gateway's server owns the signal handlers, and the
simulator is stopped after it, so Ctrl-C ends both cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import Generator

import typer
import uvicorn

from ..http.app import create_app
from ..observability.logs import batch_on_loop
from ..services import admin
from ..services.gateway import build_gateway
from ..settings import Settings
from ..upstream.simulator import SimulatorConfig, create_simulator_app
from .common import print_key


class _QuietServer(uvicorn.Server):
    """A server that leaves signal handling to its sibling."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


async def _serve(settings: Settings) -> None:
    detach = batch_on_loop(asyncio.get_running_loop())  # log lines: one write per turn of the loop
    try:
        await _serve_batched(settings)
    finally:
        detach()


async def _serve_batched(settings: Settings) -> None:
    gw = await build_gateway(settings)  # one build: bootstrapped here, then served by the app
    try:
        issued = await admin.bootstrap(gw)
    except BaseException:
        await gw.aclose()
        raise
    base_url = f"http://{settings.host}:{settings.port}"
    if issued is not None:
        typer.echo("First start: created user 'default'.")
        print_key(issued, base_url)
    upstream = (
        f"built-in simulator on http://127.0.0.1:{settings.simulator_port}"
        if settings.use_simulator
        else settings.kling_base_url
    )
    typer.echo(f"kling-gateway on {base_url} (upstream: {upstream}; docs: {base_url}/docs)")
    # Everything built so far (modules, app, gateway) lives as long as the process: move it out of the
    # collector's sight, so each full collection under load scans only request garbage. Measured with
    # wrk: full collections of 50-94 ms were the GET p99 tail (docs/benchmarks.md).
    gc.freeze()

    gateway = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, gateway=gw),
            host=settings.host,
            port=settings.port,
            log_level="warning",
            log_config=None,
        )
    )
    if not settings.use_simulator:
        await gateway.serve()
        return
    sim_config = SimulatorConfig(public_base_url=f"http://127.0.0.1:{settings.simulator_port}")
    sim = _QuietServer(
        uvicorn.Config(
            create_simulator_app(sim_config),
            host="127.0.0.1",
            port=settings.simulator_port,
            log_level="warning",
            log_config=None,
        )
    )
    sim_task = asyncio.create_task(sim.serve())
    try:
        await gateway.serve()
    finally:
        sim.should_exit = True
        await sim_task


def run_serve(settings: Settings) -> None:
    """On uvloop, as ``uvicorn.run`` would pick (``loop="auto"``): ``Server.serve`` runs on whatever loop it
    is given, and this process used to give it the stdlib loop. Under create load the stdlib loop's own
    Python (selector polling, handle scheduling, socket writes) was a quarter of the gateway's CPU."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - a pinned dependency; the stdlib loop still works
        asyncio.run(_serve(settings))
        return
    uvloop.run(_serve(settings))
