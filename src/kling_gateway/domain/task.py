"""Task statuses, their order, and how they look on the wire.

The order matters: a status change is applied only when it moves *forward* (``rank``), so a stale
poll result or an out-of-order callback can never drag a task back from ``processing`` to
``submitted`` or out of a terminal state.
"""

from __future__ import annotations

from enum import StrEnum


class TaskStatus(StrEnum):
    QUEUED = "queued"  # row written, upstream create in flight or its outcome unknown
    SUBMITTED = "submitted"
    PROCESSING = "processing"
    SUCCEED = "succeed"
    FAILED = "failed"
    # upstream refused the create: no upstream task exists; hidden from clients
    REJECTED = "rejected"


_RANK = {
    TaskStatus.QUEUED: 0,
    TaskStatus.SUBMITTED: 1,
    TaskStatus.PROCESSING: 2,
    TaskStatus.SUCCEED: 3,
    TaskStatus.FAILED: 3,
    TaskStatus.REJECTED: 3,
}

TERMINAL = frozenset({TaskStatus.SUCCEED, TaskStatus.FAILED, TaskStatus.REJECTED})
ACTIVE = frozenset({TaskStatus.QUEUED, TaskStatus.SUBMITTED, TaskStatus.PROCESSING})


def rank(status: TaskStatus) -> int:
    return _RANK[status]


def can_move(current: TaskStatus, new: TaskStatus) -> bool:
    """Forward-only: terminal states are final, and equal rank is not a change."""
    if current in TERMINAL:
        return False
    return _RANK[new] > _RANK[current]


def wire_status(status: TaskStatus) -> str:
    """What a Kling client sees. ``queued`` is ours alone; Kling clients only know ``submitted``."""
    if status is TaskStatus.QUEUED:
        return "submitted"
    if status is TaskStatus.REJECTED:
        return "failed"
    return status.value


def from_upstream(value: str) -> TaskStatus | None:
    """Kling's status string → ours; also accepts the new-design ``succeeded``
    (kling-api.md §11.2)."""
    if value == "succeeded":
        return TaskStatus.SUCCEED
    try:
        status = TaskStatus(value)
    except ValueError:
        return None
    upstream_states = (
        TaskStatus.SUBMITTED,
        TaskStatus.PROCESSING,
        TaskStatus.SUCCEED,
        TaskStatus.FAILED,
    )
    return status if status in upstream_states else None
