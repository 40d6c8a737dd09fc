"""The long-running commands: ``serve`` (gateway, and simulator when no Kling credentials are set),
``worker`` (background loops alone) and ``simulator`` (the built-in Kling simulator alone)."""

from __future__ import annotations

import asyncio
import signal
from typing import Annotated, Any

import typer

from ..upstream.simulator import SimulatorConfig, run_simulator
from ..worker.runner import run_all
from .common import load_settings
from .preflight import open_gateway
from .serve import run_serve
from .serve_workers import run_workers


def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default KGW_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default KGW_PORT)")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Gateway processes on this port")] = 1,
) -> None:
    """Run the gateway: migrate the DB, print a bootstrap key on first run, serve, refresh tasks."""
    settings = load_settings()
    updates: dict[str, Any] = {}
    if host is not None:
        updates["host"] = host
    if port is not None:
        updates["port"] = port
    chosen = settings.model_copy(update=updates) if updates else settings
    if workers > 1:
        run_workers(chosen, workers)
        return
    run_serve(chosen)


def worker() -> None:
    """Run the background workers alone (task refresher, webhook delivery, mirroring), no HTTP.

    Start as many as you like against one database: leases keep them from doing the same work
    twice."""
    settings = load_settings()

    async def main() -> None:
        gw = await open_gateway(settings, setup=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        typer.echo("kling-gateway worker running (Ctrl-C to stop)")
        try:
            await run_all(gw, stop)
        finally:
            await gw.aclose()

    asyncio.run(main())


def simulator(
    host: str = "127.0.0.1",
    port: int = 8001,
    submitted_seconds: float = 1.0,
    processing_seconds: float = 3.0,
    failure_rate: float = 0.0,
    concurrency: Annotated[int, typer.Option(help="Tasks in flight per account and model")] = 100,
) -> None:
    """Run the built-in Kling simulator alone (AK sim-ak / SK sim-sk)."""
    config = SimulatorConfig(
        submitted_seconds=submitted_seconds,
        processing_seconds=processing_seconds,
        task_failure_rate=failure_rate,
        concurrency_per_model=concurrency,
        public_base_url=f"http://{host}:{port}",
    )
    run_simulator(host, port, config)
