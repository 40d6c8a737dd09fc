"""The mirror worker: copies succeeded tasks' videos into the media store, and applies retention.

``run_once()`` leases a small batch of pending tasks (as many as it downloads at once: a leased task
waiting behind a slow download would only hold its lease for nothing), mirrors them concurrently and
returns how many it took, so tests drive it pass by pass. Several workers or nodes can run side by
side: a leased task is skipped by the others, a crashed worker's lease expires, and the outcome is
written once (rows.py).

Retention runs from the same loop about once an hour, and also while mirroring is switched off, so
files mirrored earlier still go when their time is up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets

from ..mirror.rows import MirrorRows
from ..mirror.service import Mirror, Outcome, mirror_task, sweep
from ..services.gateway import Gateway
from ..storage.tasks import TaskRecord

log = logging.getLogger("kling_gateway.mirror.worker")

SWEEP_EVERY_SECONDS = 3600.0
LEASE_MARGIN_SECONDS = 60.0


class MirrorWorker:
    def __init__(
        self,
        gw: Gateway,
        mirror: Mirror,
        *,
        concurrency: int = 4,
        owner: str | None = None,
        sweep_every_seconds: float = SWEEP_EVERY_SECONDS,
    ) -> None:
        self.gw = gw
        self.mirror = mirror
        self.concurrency = concurrency
        self.owner = owner or f"mirror:{secrets.token_hex(4)}"
        self.sweep_every = sweep_every_seconds
        self._rows = MirrorRows(gw.engine)
        self._next_sweep: float | None = None  # gateway clock; None: sweep on the first pass
        self.outcomes: dict[Outcome, int] = dict.fromkeys(Outcome, 0)

    def _lease_ms(self) -> int:
        # A task's videos download one after another (a video, maybe with a watermarked copy).
        return int((2 * self.gw.settings.mirror_timeout_seconds + LEASE_MARGIN_SECONDS) * 1000)

    async def run_once(self) -> int:
        await self._maybe_sweep()
        if not self.gw.settings.mirror_enabled:
            return 0
        claimed = await self._rows.claim(
            self.gw.now_ms(), self.concurrency, self.owner, self._lease_ms()
        )
        if claimed:
            await asyncio.gather(*(self._one(t) for t in claimed))
        return len(claimed)

    async def _one(self, t: TaskRecord) -> None:
        try:
            outcome = await mirror_task(self.gw, self.mirror, t)
        except (
            Exception
        ):  # the lease stays: the task is tried again when it expires, not in a hot loop
            log.exception("mirroring task %s crashed", t.id)
            return
        self.outcomes[outcome] += 1

    async def _maybe_sweep(self) -> None:
        now = self.gw.clock()
        if self._next_sweep is not None and now < self._next_sweep:
            return
        self._next_sweep = now + self.sweep_every
        try:
            await sweep(self.gw, self.mirror)
        except Exception:
            log.exception("mirror retention sweep failed")

    async def run(self, stop: asyncio.Event) -> None:
        interval = self.gw.settings.refresh_interval_seconds
        while not stop.is_set():
            try:
                n = await self.run_once()
            except Exception:
                log.exception("mirror pass failed")
                n = 0
            if n < self.concurrency:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), interval)
