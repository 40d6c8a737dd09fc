"""Writes a reply no longer waits for (``Submitter.mark_submitted``): held here so they are
neither collected mid-flight nor cut off at shutdown."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger("kling_gateway.gateway")


class Background:
    __slots__ = ("_tasks",)

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def __bool__(self) -> bool:
        return bool(self._tasks)

    def __len__(self) -> int:
        return len(self._tasks)

    def after_reply(self, work: Coroutine[Any, Any, None], what: str) -> None:
        """Run ``work`` without the caller waiting for it; a failure is logged with ``what``."""
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(lambda t: self._finished(t, what))

    def _finished(self, task: asyncio.Task[None], what: str) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("%s failed: %s", what, exc, exc_info=exc)

    async def drain(self) -> None:
        """Wait for the work ``after_reply`` started (and whatever that work starts in turn)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
