"""Bring one unfinished task up to date with upstream (the refresher's and the callback's unit of work).

Two cases: a row that never got an upstream id (its create outcome is unknown) is reconciled by asking
upstream for our public id, sent as ``external_task_id``; a row with an upstream id is read and moved
forward. Every write is a compare-and-set from the status we read, so a racing callback, worker or node
wins cleanly and nothing moves backwards. Every write also releases the poller's lease.

A task that has not finished ``task_timeout_seconds`` after creation gets one last read; if upstream still
has no answer it becomes ``failed`` through the same compare-and-set path (and the same webhook event).
"""

from __future__ import annotations

import logging
from typing import Any

import orjson

from ..domain.schedule import next_poll_delay, with_jitter
from ..domain.task import TERMINAL, TaskStatus, can_move, from_upstream
from ..storage.tasks import TaskRecord
from ..upstream.client import UpstreamError, UpstreamTask
from . import submit
from .gateway import Gateway
from .transitions import move
from .wire import public_videos

log = logging.getLogger("kling_gateway.refresh")

MAX_RESUBMIT_ATTEMPTS = 30
_RELEASE = {"lease_until": None, "lease_owner": None}


async def refresh_task(gw: Gateway, t: TaskRecord) -> None:
    upstream = gw.upstream_for(t.upstream_account_id)
    timed_out = gw.now_ms() - t.created_at >= gw.settings.task_timeout_seconds * 1000
    try:
        if t.upstream_task_id is None:
            found = await upstream.find_by_external_id(t.id)
            if found is None:
                if timed_out:
                    await _time_out(gw, t)
                    return
                await _resubmit(gw, t)
                return
            moved = await apply(gw, t, found)
        else:
            moved = await apply(gw, t, await upstream.get(t.upstream_task_id))
    except UpstreamError as exc:
        log.info("refresh of task %s failed upstream (%s); retrying later", t.id, exc.code)
        if timed_out:
            await _time_out(gw, t)
            return
        await _reschedule(gw, t)
        return
    if timed_out and not moved:
        fresh = await gw.tasks.get(t.id)
        if fresh is not None and fresh.task_status not in TERMINAL:
            await _time_out(gw, fresh)


async def _time_out(gw: Gateway, t: TaskRecord) -> None:
    hours = gw.settings.task_timeout_seconds / 3600
    await move(
        gw,
        t,
        TaskStatus(t.status),
        by="timeout",
        status=TaskStatus.FAILED.value,
        status_msg=f"task did not finish within {hours:g} h; the gateway stopped waiting for it",
        next_poll_at=None,
        updated_at=gw.now_ms(),
        **_RELEASE,
    )


async def _resubmit(gw: Gateway, t: TaskRecord) -> None:
    try:
        await submit.resubmit(gw, t)
    except UpstreamError as exc:
        if exc.refusal.transient and t.poll_attempts < MAX_RESUBMIT_ATTEMPTS:
            await _reschedule(gw, t)
            return
        await move(
            gw,
            t,
            TaskStatus.QUEUED,
            by="resubmit",
            status=TaskStatus.FAILED.value,
            status_msg=f"upstream refused the task ({exc.code}): {exc.message}",
            next_poll_at=None,
            updated_at=gw.now_ms(),
            **_RELEASE,
        )


async def apply(gw: Gateway, t: TaskRecord, ut: UpstreamTask, by: str = "poll") -> bool:
    """Move ``t`` to upstream's state if that is a step forward; True when this call changed it.
    ``by``: who read that state (the refresher's poll, or an inbound callback)."""
    current = TaskStatus(t.status)
    new = from_upstream(ut.status)
    now = gw.now_ms()
    attempts = t.poll_attempts + 1
    values: dict[str, Any] = {"poll_attempts": attempts, **_RELEASE}
    if t.upstream_task_id is None:
        values["upstream_task_id"] = ut.task_id
    if new is None or not can_move(current, new):
        values["next_poll_at"] = now + _delay_ms(gw, attempts)
        await gw.tasks.transition(t.id, current, **values)
        return False
    values.update(status=new.value, status_msg=ut.status_msg, updated_at=now)
    if new is TaskStatus.SUCCEED:
        values["result_json"] = orjson.dumps(public_videos(ut.videos)).decode()
    if new in TERMINAL:
        values["next_poll_at"] = None
        values["unit_deduction"] = ut.unit_deduction
    else:
        values["next_poll_at"] = now + _delay_ms(gw, attempts)
    return await move(gw, t, current, by=by, **values)


async def _reschedule(gw: Gateway, t: TaskRecord) -> None:
    attempts = t.poll_attempts + 1
    await gw.tasks.reschedule(
        t.id, TaskStatus(t.status), gw.now_ms() + _delay_ms(gw, attempts), attempts
    )


def _delay_ms(gw: Gateway, attempts: int) -> int:
    s = gw.settings
    delay = next_poll_delay(attempts, first=s.first_poll_seconds, cap=s.max_poll_seconds)
    return int(with_jitter(delay, s.poll_jitter, gw.rng) * 1000)
