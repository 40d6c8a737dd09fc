"""The refresher: moves every unfinished task to its terminal state on its own.

``run_once()`` makes one pass over due tasks and returns how many it looked at, so tests drive it
deterministically; ``run()`` loops until stopped, sleeping only when a pass found less than a full batch.
Semantics are at-least-once: a task may be read twice by two nodes, but each state change is a
compare-and-set, so it is applied once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from ..domain.schedule import next_poll_delay
from ..domain.task import TaskStatus
from ..services.gateway import Gateway
from ..services.refresh import refresh_task
from ..storage.tasks import TaskRecord

log = logging.getLogger("kling_gateway.poller")

CATALOG_RELOAD_SECONDS = 5.0


class Poller:
    def __init__(self, gw: Gateway, *, concurrency: int = 16) -> None:
        self.gw = gw
        self._sem = asyncio.Semaphore(concurrency)

    async def run_once(self) -> int:
        due = await self.gw.tasks.due(self.gw.now_ms(), self.gw.settings.refresh_batch)
        if due:
            await asyncio.gather(*(self._one(t) for t in due))
        return len(due)

    async def _one(self, t: TaskRecord) -> None:
        async with self._sem:
            try:
                await refresh_task(self.gw, t)
            except Exception:  # one bad task must not stop the pass, nor stay first in line
                log.exception("refresh of task %s crashed; backing off", t.id)
                await self._back_off(t)

    async def _back_off(self, t: TaskRecord) -> None:
        attempts = t.poll_attempts + 1
        s = self.gw.settings
        delay = next_poll_delay(attempts, first=s.first_poll_seconds, cap=s.max_poll_seconds)
        try:
            await self.gw.tasks.reschedule(
                t.id, TaskStatus(t.status), self.gw.now_ms() + int(delay * 1000), attempts
            )
        except Exception:
            log.exception("could not reschedule task %s", t.id)

    async def run(self, stop: asyncio.Event) -> None:
        interval = self.gw.settings.refresh_interval_seconds
        loop = asyncio.get_running_loop()
        next_reload = loop.time() + CATALOG_RELOAD_SECONDS
        while not stop.is_set():
            try:
                n = await self.run_once()
                if loop.time() >= next_reload:
                    await self.gw.refresh_catalog()
                    if self.gw.hot is not None:
                        await self.gw.hot.maintain()
                    next_reload = loop.time() + CATALOG_RELOAD_SECONDS
            except Exception:
                log.exception("refresher pass failed")
                n = 0
            if n < self.gw.settings.refresh_batch:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), interval)
