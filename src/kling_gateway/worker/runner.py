"""All background workers of one process, started together by ``serve`` (beside HTTP) or alone by
``kling-gateway worker``; several such processes can run against one database (leases keep them apart)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from ..services.gateway import Gateway
from .poller import Poller

WorkerLoop = Callable[[asyncio.Event], Awaitable[None]]


def loops(gw: Gateway) -> list[WorkerLoop]:
    return [Poller(gw).run]


async def run_all(gw: Gateway, stop: asyncio.Event) -> None:
    await asyncio.gather(*(loop(stop) for loop in loops(gw)))
