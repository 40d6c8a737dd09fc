"""Bring one unfinished task up to date with upstream (the refresher's and the callback's unit of
work).

Two cases: a row that never got an upstream id (its create outcome is unknown) is reconciled by
asking upstream for our public id, sent as ``external_task_id``; a row with an upstream id is read
and moved forward. Every write is a compare-and-set from the status we read, so a racing callback,
worker or node wins cleanly and nothing moves backwards. Every write also releases the poller's
lease.

A task that has not finished ``task_timeout_seconds`` after creation gets one last read; if upstream
still has no answer it becomes ``failed`` through the same compare-and-set path (and the same
webhook event).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from ..domain.schedule import next_poll_delay, with_jitter
from ..domain.task import TERMINAL, TaskStatus, can_move, from_upstream
from ..settings import Settings
from ..storage.ports import TaskRows
from ..storage.tasks import TaskRecord
from ..upstream.client import UpstreamError, UpstreamTask
from .channels import ChannelSet
from .submit import Submitter
from .transitions import Mover
from .wire import public_videos

log = logging.getLogger("kling_gateway.refresh")

MAX_RESUBMIT_ATTEMPTS = 30
_RELEASE = {"lease_until": None, "lease_owner": None}


@dataclass(frozen=True, slots=True)
class Refresher:
    tasks: TaskRows
    channels: ChannelSet
    mover: Mover
    submitter: Submitter
    settings: Settings
    rng: random.Random
    clock: Callable[[], float]

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    async def refresh_task(self, t: TaskRecord) -> None:
        upstream = self.channels.for_task(t.upstream_account_id)
        timed_out = self.now_ms() - t.created_at >= self.settings.task_timeout_seconds * 1000
        try:
            if t.upstream_task_id is None:
                found = await upstream.find_by_external_id(t.id)
                if found is None:
                    if timed_out:
                        await self._time_out(t)
                        return
                    await self._resubmit(t)
                    return
                moved = await self.apply(t, found)
            else:
                moved = await self.apply(t, await upstream.get(t.upstream_task_id))
        except UpstreamError as exc:
            log.info("refresh of task %s failed upstream (%s); retrying later", t.id, exc.code)
            if timed_out:
                await self._time_out(t)
                return
            await self._reschedule(t)
            return
        if timed_out and not moved:
            fresh = await self.tasks.get(t.id)
            if fresh is not None and fresh.task_status not in TERMINAL:
                await self._time_out(fresh)

    async def _time_out(self, t: TaskRecord) -> None:
        hours = self.settings.task_timeout_seconds / 3600
        await self.mover.move(
            t,
            TaskStatus(t.status),
            by="timeout",
            status=TaskStatus.FAILED.value,
            status_msg=(
                f"task did not finish within {hours:g} h; the gateway stopped waiting for it"
            ),
            next_poll_at=None,
            updated_at=self.now_ms(),
            **_RELEASE,
        )

    async def _resubmit(self, t: TaskRecord) -> None:
        try:
            await self.submitter.resubmit(t)
        except UpstreamError as exc:
            if exc.refusal.transient and t.poll_attempts < MAX_RESUBMIT_ATTEMPTS:
                await self._reschedule(t)
                return
            await self.mover.move(
                t,
                TaskStatus.QUEUED,
                by="resubmit",
                status=TaskStatus.FAILED.value,
                status_msg=f"upstream refused the task ({exc.code}): {exc.message}",
                next_poll_at=None,
                updated_at=self.now_ms(),
                **_RELEASE,
            )

    async def apply(self, t: TaskRecord, ut: UpstreamTask, by: str = "poll") -> bool:
        """Move ``t`` to upstream's state if that is a step forward; True when this call changed
        it. ``by``: who read that state (the refresher's poll, or an inbound callback)."""
        current = TaskStatus(t.status)
        new = from_upstream(ut.status)
        now = self.now_ms()
        attempts = t.poll_attempts + 1
        values: dict[str, Any] = {"poll_attempts": attempts, **_RELEASE}
        if t.upstream_task_id is None:
            values["upstream_task_id"] = ut.task_id
        if new is None or not can_move(current, new):
            values["next_poll_at"] = now + self._delay_ms(attempts)
            await self.tasks.transition(t.id, current, **values)
            return False
        values.update(status=new.value, status_msg=ut.status_msg, updated_at=now)
        if new is TaskStatus.SUCCEED:
            values["result_json"] = orjson.dumps(public_videos(ut.videos)).decode()
        if new in TERMINAL:
            values["next_poll_at"] = None
            values["unit_deduction"] = ut.unit_deduction
        else:
            values["next_poll_at"] = now + self._delay_ms(attempts)
        return await self.mover.move(t, current, by=by, **values)

    async def _reschedule(self, t: TaskRecord) -> None:
        attempts = t.poll_attempts + 1
        await self.tasks.reschedule(
            t.id, TaskStatus(t.status), self.now_ms() + self._delay_ms(attempts), attempts
        )

    def _delay_ms(self, attempts: int) -> int:
        s = self.settings
        delay = next_poll_delay(attempts, first=s.first_poll_seconds, cap=s.max_poll_seconds)
        return int(with_jitter(delay, s.poll_jitter, self.rng) * 1000)
