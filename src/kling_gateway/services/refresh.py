"""Bring one unfinished task up to date with upstream (the refresher's unit of work).

Two cases: a row that never got an upstream id (its create outcome is unknown) is reconciled by asking
upstream for our public id, sent as ``external_task_id``; a row with an upstream id is read and moved
forward. Every write is a compare-and-set from the status we read, so a racing callback, worker or node
wins cleanly and nothing moves backwards.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson

from ..domain.schedule import next_poll_delay
from ..domain.task import TERMINAL, TaskStatus, can_move, from_upstream
from ..storage.tasks import TaskRecord
from ..upstream.client import UpstreamError, UpstreamTask
from . import tasks
from .gateway import Gateway
from .transitions import move
from .wire import public_videos

log = logging.getLogger("kling_gateway.refresh")

# Refusals that say "not now" rather than "never": an accepted task waits and tries again.
TRANSIENT_CODES = frozenset({1302, 1303, 5001})
MAX_RESUBMIT_ATTEMPTS = 30


async def refresh_task(gw: Gateway, t: TaskRecord) -> None:
    upstream = gw.upstream_for(t.upstream_account_id)
    try:
        if t.upstream_task_id is None:
            found = await upstream.client.find_by_external_id(t.id)
            if found is None:
                await _resubmit(gw, t)
                return
            await apply(gw, t, found)
        else:
            await apply(gw, t, await upstream.client.get(t.upstream_task_id))
    except UpstreamError as exc:
        log.info("refresh of task %s failed upstream (%s); retrying later", t.id, exc.code)
        await _reschedule(gw, t)


async def _resubmit(gw: Gateway, t: TaskRecord) -> None:
    try:
        await tasks.resubmit(gw, t)
    except UpstreamError as exc:
        if exc.code in TRANSIENT_CODES and t.poll_attempts < MAX_RESUBMIT_ATTEMPTS:
            await _reschedule(gw, t)
            return
        await move(
            gw,
            t,
            TaskStatus.QUEUED,
            status=TaskStatus.FAILED.value,
            status_msg=f"upstream refused the task ({exc.code}): {exc.message}",
            next_poll_at=None,
            updated_at=gw.now_ms(),
        )


async def apply(gw: Gateway, t: TaskRecord, ut: UpstreamTask) -> bool:
    """Move ``t`` to upstream's state if that is a step forward; True when this call changed it."""
    current = TaskStatus(t.status)
    new = from_upstream(ut.status)
    now = gw.now_ms()
    attempts = t.poll_attempts + 1
    values: dict[str, Any] = {"poll_attempts": attempts}
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
    return await move(gw, t, current, **values)


async def _reschedule(gw: Gateway, t: TaskRecord) -> None:
    attempts = t.poll_attempts + 1
    await gw.tasks.reschedule(t.id, TaskStatus(t.status), gw.now_ms() + _delay_ms(gw, attempts), attempts)


def _delay_ms(gw: Gateway, attempts: int) -> int:
    s = gw.settings
    return int(next_poll_delay(attempts, first=s.first_poll_seconds, cap=s.max_poll_seconds) * 1000)
