"""In-memory stores behind the ports (ports.py): small, real implementations for unit tests of
the task path, with the same refusals and compare-and-sets as the SQL ones, and no database.

Rows are copied in and out, as a database would: a caller's changes to a record it holds reach
the store only through a write.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ..domain.task import ACTIVE, TaskStatus
from .money import Close, Reserve
from .task_sql import history_entry
from .tasks import DuplicateExternalId, DuplicateTaskId, Refused, TaskRecord
from .upstreams import UpstreamAccount


class MemoryTasks:
    """Task rows, each user's balance and each key's quota (None: no quota), the reserve and
    close ledger, and the webhook events the compare-and-sets recorded."""

    def __init__(
        self, balances: dict[int, int] | None = None, quotas: dict[int, int] | None = None
    ) -> None:
        self.rows: dict[str, TaskRecord] = {}
        self.balances: dict[int, int] = dict(balances or {})
        self.quotas: dict[int, int] = dict(quotas or {})
        self.ledger: list[Reserve | Close] = []
        self.events: list[dict[str, Any]] = []

    async def insert(self, record: TaskRecord, *, reserve: Reserve | None = None) -> None:
        if record.id in self.rows:
            raise DuplicateTaskId(record.id)
        if record.external_task_id is not None and self._external(
            record.user_id, record.external_task_id
        ):
            raise DuplicateExternalId(record.external_task_id)
        if record.status_history is None:
            first = history_entry(record.status, record.created_at, "create")
            record.status_history = f"[{first}]"
        if reserve is not None:
            if self.balances.get(reserve.user_id, 0) < reserve.amount:
                raise Refused(0)
            quota = self.quotas.get(reserve.key_id) if reserve.key_id is not None else None
            if quota is not None and quota < reserve.amount:
                raise Refused(1)
            self.balances[reserve.user_id] -= reserve.amount
            if quota is not None and reserve.key_id is not None:
                self.quotas[reserve.key_id] = quota - reserve.amount
            self.ledger.append(reserve)
        self.rows[record.id] = dataclasses.replace(record)

    async def get(self, task_id: str) -> TaskRecord | None:
        row = self.rows.get(task_id)
        return dataclasses.replace(row) if row is not None else None

    async def by_external_id(self, user_id: int, external_task_id: str) -> TaskRecord | None:
        row = self._external(user_id, external_task_id)
        return dataclasses.replace(row) if row is not None else None

    def _external(self, user_id: int, external_task_id: str) -> TaskRecord | None:
        for row in self.rows.values():
            if row.user_id == user_id and row.external_task_id == external_task_id:
                return row
        return None

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
        row = self.rows.get(task_id)
        if row is None or row.status != expected.value:
            return False
        new = values.get("status")
        if new is not None and new != row.status:
            entry = history_entry(new, values.get("updated_at"), by)
            old = row.status_history
            values["status_history"] = f"[{entry}]" if old is None else f"{old[:-1]},{entry}]"
        self.rows[task_id] = dataclasses.replace(row, **values)
        if event is not None:
            self.events.append(event)
        if close is not None:
            self.balances[close.user_id] = self.balances.get(close.user_id, 0) + close.back
            if close.key_id is not None and close.key_id in self.quotas:
                self.quotas[close.key_id] += close.back
            self.ledger.append(close)
        return True

    async def reschedule(
        self, task_id: str, expected: TaskStatus, next_poll_at: int, attempts: int
    ) -> bool:
        return await self.transition(
            task_id,
            expected,
            next_poll_at=next_poll_at,
            poll_attempts=attempts,
            lease_until=None,
            lease_owner=None,
        )

    async def repoint(self, task_id: str, from_account: int | None, to_account: int) -> bool:
        row = self.rows.get(task_id)
        if (
            row is None
            or row.status != TaskStatus.QUEUED.value
            or row.upstream_task_id is not None
            or row.upstream_account_id != from_account
        ):
            return False
        self.rows[task_id] = dataclasses.replace(row, upstream_account_id=to_account)
        return True

    async def upstream_in_flight(self, account_id: int, model: str) -> int:
        active = {s.value for s in ACTIVE}
        return sum(
            1
            for r in self.rows.values()
            if r.upstream_account_id == account_id
            and r.upstream_model == model
            and r.status in active
        )


class MemoryUpstreams:
    """Upstream accounts with their keys; cooldowns are written back as the SQL store does."""

    def __init__(self, accounts: list[UpstreamAccount]) -> None:
        self._accounts = {a.id: a for a in accounts}

    async def accounts(self) -> list[UpstreamAccount]:
        return [self._accounts[i] for i in sorted(self._accounts)]

    async def set_cooldown(self, account_id: int, until: int | None, reason: str | None) -> None:
        acc = self._accounts[account_id]
        self._accounts[account_id] = dataclasses.replace(
            acc, cooldown_until=until, cooldown_reason=reason
        )

    async def set_key_cooldown(self, key_id: int, until: int | None, reason: str | None) -> None:
        for acc in self._accounts.values():
            keys = tuple(
                dataclasses.replace(k, cooldown_until=until, cooldown_reason=reason)
                if k.id == key_id
                else k
                for k in acc.keys
            )
            self._accounts[acc.id] = dataclasses.replace(acc, keys=keys)
