"""The refresher: moves every unfinished task to its terminal state on its own.

``run_once()`` claims the due tasks under a lease (storage ``claim_due``: ``FOR UPDATE SKIP LOCKED``
on PostgreSQL, a compare-and-set on SQLite), reads them upstream with at most
``poll_concurrency_per_account`` reads in flight per upstream account, and returns how many it
claimed, so tests drive it deterministically; ``run()`` loops until stopped, sleeping only when a
pass found less than a full batch. Several workers or nodes can run side by side: a leased task is
skipped by the others, a crashed worker's lease simply expires, and each state change is a
compare-and-set, applied once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid

from ..domain.schedule import next_poll_delay
from ..domain.task import TaskStatus
from ..services.gateway import Gateway
from ..storage.tasks import TaskRecord

log = logging.getLogger("kling_gateway.poller")


def worker_id() -> str:
    return f"{socket.gethostname()[:32]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Poller:
    def __init__(self, gw: Gateway, *, owner: str | None = None) -> None:
        self.gw = gw
        self.owner = owner or worker_id()
        self._per_account: dict[int | None, asyncio.Semaphore] = {}

    def _slots(self, account_id: int | None) -> asyncio.Semaphore:
        sem = self._per_account.get(account_id)
        if sem is None:
            sem = self._per_account[account_id] = asyncio.Semaphore(
                self.gw.settings.poll_concurrency_per_account
            )
        return sem

    async def run_once(self) -> int:
        s = self.gw.settings
        claimed = await self.gw.tasks.claim_due(
            self.gw.now_ms(), s.refresh_batch, self.owner, int(s.lease_seconds * 1000)
        )
        if claimed:
            await asyncio.gather(*(self._one(t) for t in claimed))
        return len(claimed)

    async def _one(self, t: TaskRecord) -> None:
        async with self._slots(t.upstream_account_id):
            try:
                await self.gw.refresher.refresh_task(t)
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
        next_reload = loop.time() + self.gw.settings.channel_reload_seconds
        while not stop.is_set():
            try:
                n = await self.run_once()
                if loop.time() >= next_reload:
                    await self.gw.refresh_catalog()
                    next_reload = loop.time() + self.gw.settings.channel_reload_seconds
            except Exception:
                log.exception("refresher pass failed")
                n = 0
            if n < self.gw.settings.refresh_batch:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), interval)
