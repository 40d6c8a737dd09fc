"""Every task status change goes through ``Mover.move``: one compare-and-set that also records, in
the same transaction, the outbound webhook event the change causes (when the task has a
``callback_url``) and, for a terminal change, the close of the task's reserve.

So an event is never lost (it commits with the change) nor doubled (one per task and status, and
only the writer whose compare-and-set matched records it). Delivery happens later, in
worker/webhooks.py.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from ..domain.task import TERMINAL, TaskStatus, wire_status
from ..mirror.service import Signing, public_videos
from ..observability.metrics import Telemetry
from ..settings import Settings
from ..storage.money import Close
from ..storage.ports import TaskWrites
from ..storage.tasks import TaskRecord
from .ledger import Ledger
from .wire import task_object

# Statuses a client hears about. ``queued`` is ours alone; ``rejected`` tasks were never theirs.
_ANNOUNCED = frozenset(
    {TaskStatus.SUBMITTED, TaskStatus.PROCESSING, TaskStatus.SUCCEED, TaskStatus.FAILED}
)


def new_event_id() -> str:
    return "msg_" + secrets.token_hex(12)


def callback_body(t: TaskRecord, gw: Signing | None = None) -> bytes:
    """Kling's legacy callback: the bare task object (no envelope), our ids, the client's external
    id. ``gw`` signs mirrored result links."""
    return orjson.dumps(task_object(t, public_videos(gw, t, None) if gw is not None else None))


@dataclass(frozen=True, slots=True)
class Mover:
    """``settings`` and ``clock`` make it a ``Signing``: webhook payloads carry signed links."""

    tasks: TaskWrites
    ledger: Ledger
    telemetry: Telemetry
    settings: Settings
    clock: Callable[[], float]

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    async def move(
        self, t: TaskRecord, expected: TaskStatus, *, by: str = "submit", **values: Any
    ) -> bool:
        """CAS ``t`` from ``expected`` with ``values``; True when this call made the change. ``by``
        names who saw the new status, for the task's status history (the submitter's: "submit")."""
        new = values.get("status")
        close: Close | None = None
        if new is not None and TaskStatus(new) in TERMINAL:
            # sets values["charged_micro"]
            close = self.ledger.close(t, TaskStatus(new), values, self.now_ms())
        event = None
        if (
            t.callback_url
            and new is not None
            and new != expected.value
            and TaskStatus(new) in _ANNOUNCED
        ):
            event = self._event(t, TaskStatus(new), dataclasses.replace(t, **values))
        moved = await self.tasks.transition(
            t.id, expected, event=event, close=close, by=by, **values
        )
        if moved and new is not None and new != expected.value:
            self.telemetry.task_moved(t.id, expected.value, str(new))
        return moved

    def _event(self, t: TaskRecord, new: TaskStatus, changed: TaskRecord) -> dict[str, Any]:
        now = self.now_ms()
        return {
            "id": new_event_id(),
            "task_id": t.id,
            "user_id": t.user_id,
            "task_status": wire_status(new),
            "url": t.callback_url,
            "payload": callback_body(changed, self).decode(),
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
