"""The store methods the create, submit and refresh use cases call, as Protocols.

The SQL stores (tasks.py, upstreams.py, limits.py) implement them for the gateway; memory.py
implements them in memory for unit tests of those use cases. A use case names the port, never the
class, so either can be handed in.
"""

from __future__ import annotations

from typing import Any, Protocol

from ..domain.task import TaskStatus
from .money import Close, Reserve
from .tasks import TaskRecord
from .upstreams import UpstreamAccount


class TaskReads(Protocol):
    async def get(self, task_id: str) -> TaskRecord | None: ...
    async def by_external_id(self, user_id: int, external_task_id: str) -> TaskRecord | None: ...


class TaskWrites(Protocol):
    async def transition(
        self,
        task_id: str,
        expected: TaskStatus,
        *,
        event: dict[str, Any] | None = None,
        close: Close | None = None,
        by: str = "gateway",
        **values: Any,
    ) -> bool:
        """Compare-and-set from ``expected``; ``event`` and ``close`` commit with the change; a new
        status appends ``{status, at, by}`` to the row's status history in the same change."""
        ...

    async def reschedule(
        self, task_id: str, expected: TaskStatus, next_poll_at: int, attempts: int
    ) -> bool: ...


class TaskRows(TaskReads, TaskWrites, Protocol):
    """Reads and compare-and-sets: what the refresher does to task rows."""


class Tasks(TaskRows, Protocol):
    """Everything the task path does to task rows."""

    async def insert(self, record: TaskRecord, *, reserve: Reserve | None = None) -> None:
        """Raises ``Refused`` (nothing written) when the reserve cannot be debited,
        ``DuplicateTaskId`` / ``DuplicateExternalId`` on a taken id."""
        ...

    async def repoint(self, task_id: str, from_account: int | None, to_account: int) -> bool:
        """Compare-and-set of a queued, never-submitted row's account."""
        ...


class UpstreamAccounts(Protocol):
    """What ``ChannelSet`` reads and writes of the upstream accounts."""

    async def accounts(self) -> list[UpstreamAccount]: ...
    async def set_cooldown(
        self, account_id: int, until: int | None, reason: str | None
    ) -> None: ...
    async def set_key_cooldown(
        self, key_id: int, until: int | None, reason: str | None
    ) -> None: ...


class UpstreamLoad(Protocol):
    """Tasks in flight per (account, upstream model): account caps (``ChannelSet.candidates``)."""

    async def upstream_in_flight(self, account_id: int, model: str) -> int: ...
