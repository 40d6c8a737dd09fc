"""Every task status change goes through ``move``: one compare-and-set that also records, in the same
transaction, the outbound webhook event the change causes (when the task has a ``callback_url``).

So an event is never lost (it commits with the change) nor doubled (one per task and status, and only the
writer whose compare-and-set matched records it). Delivery happens later, in worker/webhooks.py.
"""

from __future__ import annotations

import dataclasses
import secrets
from typing import Any

import orjson

from ..domain.task import TERMINAL, TaskStatus, wire_status
from ..mirror.service import public_videos
from ..storage.money import Close
from ..storage.tasks import TaskRecord
from .gateway import Gateway
from .money import close_for
from .wire import task_object

# Statuses a client hears about. ``queued`` is ours alone and ``rejected`` tasks were never the client's.
_ANNOUNCED = frozenset(
    {TaskStatus.SUBMITTED, TaskStatus.PROCESSING, TaskStatus.SUCCEED, TaskStatus.FAILED}
)


def new_event_id() -> str:
    return "msg_" + secrets.token_hex(12)


def callback_body(t: TaskRecord, gw: Gateway | None = None) -> bytes:
    """Kling's legacy callback: the bare task object (no envelope), our ids, the client's external id."""
    return orjson.dumps(task_object(t, public_videos(gw, t, None) if gw is not None else None))


async def move(gw: Gateway, t: TaskRecord, expected: TaskStatus, **values: Any) -> bool:
    """CAS ``t`` from ``expected`` with ``values``; True when this call made the change. A terminal change
    also closes the task's reserve (settle or refund) in the same transaction."""
    new = values.get("status")
    close: Close | None = None
    if new is not None and TaskStatus(new) in TERMINAL:
        close = close_for(gw, t, TaskStatus(new), values)  # sets values["charged_micro"]
    event = None
    if (
        t.callback_url
        and new is not None
        and new != expected.value
        and TaskStatus(new) in _ANNOUNCED
    ):
        changed = dataclasses.replace(t, **values)
        now = gw.now_ms()
        event = {
            "id": new_event_id(),
            "task_id": t.id,
            "user_id": t.user_id,
            "task_status": wire_status(TaskStatus(new)),
            "url": t.callback_url,
            "payload": callback_body(changed, gw).decode(),
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "lease_until": None,
            "last_status_code": None,
            "last_error": None,
            "created_at": now,
            "updated_at": now,
            "delivered_at": None,
        }
    moved = await gw.tasks.transition(t.id, expected, event=event, close=close, **values)
    if moved and new is not None and new != expected.value:
        gw.telemetry.task_moved(t.id, expected.value, str(new))
    return moved
