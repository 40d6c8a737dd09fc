"""All background workers of one process, started together by ``serve`` (beside HTTP) or alone by
``kling-gateway worker``; several such processes can run against one database (leases keep them
apart)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from ..mirror.service import Mirror, build_mirror
from ..services.gateway import Gateway
from .mirror import MirrorWorker
from .poller import Poller
from .probe import Prober
from .webhooks import WebhookWorker

WorkerLoop = Callable[[asyncio.Event], Awaitable[None]]


def loops(gw: Gateway, mirror: Mirror) -> list[WorkerLoop]:
    # The mirror worker always runs: with mirroring off it claims nothing but applies retention.
    return [Poller(gw).run, WebhookWorker(gw).run, MirrorWorker(gw, mirror).run, Prober(gw).run]


async def run_all(gw: Gateway, stop: asyncio.Event, mirror: Mirror | None = None) -> None:
    """``mirror``: the one the HTTP app serves results with; else built (and closed) here."""
    if mirror is None:
        own = build_mirror(gw.settings)
        try:
            await run_all(gw, stop, own)
        finally:
            await own.aclose()
        return
    await asyncio.gather(*(loop(stop) for loop in loops(gw, mirror)))
