"""Per-user and per-key limit overrides (migration 0009) and the day's spend the spend cap reads.

A day's spend is what tasks took from the balance since midnight UTC, net: reserves minus what
settles and refunds gave back (operator credits and debits are not spend). Both sums read the ledger
through ``(user_id, created_at)`` and ``(key_id, created_at)`` indexes; one round trip answers both.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Integer, bindparam, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from .accounts import AlreadyExists
from .tables import api_keys, ledger_entries, users

_TASK_KINDS = ("reserve", "close")


def _spent(column: Any, param: str) -> Any:
    return (
        select(func.coalesce(-func.sum(ledger_entries.c.amount_micro), 0))
        .where(
            column == bindparam(param, type_=Integer),
            ledger_entries.c.created_at >= bindparam("since"),
            ledger_entries.c.kind.in_(_TASK_KINDS),
        )
        .scalar_subquery()
    )


class UserLimitStore:
    __slots__ = ("_engine", "_spent")

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._spent = select(
            _spent(ledger_entries.c.user_id, "user_id"), _spent(ledger_entries.c.key_id, "key_id")
        )

    async def spent_since(self, user_id: int, key_id: int, since_ms: int) -> tuple[int, int]:
        """(the user's, the key's) net spend in micro-credits since ``since_ms``."""
        params = {"user_id": user_id, "key_id": key_id, "since": since_ms}
        async with self._engine.connect() as conn:
            user, key = (await conn.execute(self._spent, params)).one()
        return int(user or 0), int(key or 0)

    async def update_user(self, user_id: int, values: dict[str, Any]) -> bool:
        """Change a user's columns (limits, name); AlreadyExists when the new name is taken."""
        try:
            async with self._engine.begin() as conn:
                res = await conn.execute(
                    update(users).where(users.c.id == user_id).values(**values)
                )
        except IntegrityError as exc:
            raise AlreadyExists(f"user {values.get('name')!r} already exists") from exc
        return res.rowcount > 0

    async def update_key(self, key_id: int, values: dict[str, Any]) -> bool:
        """Change a key's columns (limits, expiry, models, IP allow-list, label)."""
        async with self._engine.begin() as conn:
            res = await conn.execute(
                update(api_keys).where(api_keys.c.id == key_id).values(**values)
            )
        return res.rowcount > 0
