"""Health probes: one cheap authenticated call per enabled upstream account every
``KGW_CHANNEL_PROBE_SECONDS``, its latency or error stored on the account for the CLI and admin API.

With several nodes, each account is probed once per interval in all (a compare-and-set on
``probed_at`` claims the turn), which keeps within Kling's one-query-per-second advice for
``/account/costs``. A probe refused for credentials or balance benches the account like a refused
create would (services/channels.py); a probe that answers ends a spell of "unreachable" at once
instead of waiting it out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from ..services.channel_admin import probe_channel
from ..services.gateway import Gateway

log = logging.getLogger("kling_gateway.probe")

TICK_SECONDS = 5.0


class Prober:
    def __init__(self, gw: Gateway) -> None:
        self.gw = gw

    async def run_once(self) -> int:
        """Probe every enabled account whose turn has come; returns how many were probed."""
        every = self.gw.settings.channel_probe_seconds
        if every <= 0:
            return 0
        now = self.gw.now_ms()
        due = []
        for channel in self.gw.upstream.all():
            if channel.account.enabled and await self.gw.upstreams.claim_probe(
                channel.account_id, now, int(every * 1000)
            ):
                due.append(channel)
        results = await asyncio.gather(
            *(probe_channel(self.gw, c) for c in due), return_exceptions=True
        )
        for channel, result in zip(due, results, strict=True):
            if isinstance(result, BaseException):
                log.error("probe of upstream account %s crashed: %r", channel.name, result)
            elif result is not None:
                log.warning("probe of upstream account %s failed: %s", channel.name, result)
        return len(due)

    async def run(self, stop: asyncio.Event) -> None:
        tick = min(TICK_SECONDS, self.gw.settings.channel_probe_seconds or TICK_SECONDS)
        while not stop.is_set():
            try:
                await self.run_once()
            except Exception:
                log.exception("probe pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), tick)
