"""Users as the operator sees them: balance, multiplier, key count, tasks in flight and limits.

One SELECT for any number of users: key counts and in-flight counts are correlated scalar
subqueries, the latter through the partial ``ix_tasks_active_user_id`` (its predicate repeated as
literal text so SQLite can use it, as storage/limits.py explains).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncEngine

from ..domain.overrides import Overrides, overrides_from_row
from .tables import ACTIVE_PREDICATE, api_keys, ledger_entries, tasks, users


@dataclass(frozen=True, slots=True)
class UserView:
    id: int
    name: str
    disabled: bool
    created_at: int
    balance_micro: int
    price_multiplier: str
    keys: int
    in_flight: int
    limits: Overrides | None


_KEYS = (
    select(func.count())
    .select_from(api_keys)
    .where(api_keys.c.user_id == users.c.id)
    .scalar_subquery()
)
_IN_FLIGHT = (
    select(func.count())
    .select_from(tasks)
    .where(tasks.c.user_id == users.c.id, literal_column(ACTIVE_PREDICATE))
    .scalar_subquery()
)
_SELECT = select(users, _KEYS.label("key_count"), _IN_FLIGHT.label("in_flight"))


def _view(row: Any) -> UserView:
    return UserView(
        id=row.id,
        name=row.name,
        disabled=bool(row.disabled),
        created_at=row.created_at,
        balance_micro=int(row.balance_micro),
        price_multiplier=row.price_multiplier,
        keys=int(row.key_count),
        in_flight=int(row.in_flight),
        limits=overrides_from_row(row),
    )


async def list_users(engine: AsyncEngine, offset: int = 0, limit: int = 100) -> list[UserView]:
    stmt = _SELECT.order_by(users.c.id).offset(offset).limit(limit)
    async with engine.connect() as conn:
        return [_view(r) for r in (await conn.execute(stmt)).all()]


async def user_view(engine: AsyncEngine, name: str) -> UserView | None:
    async with engine.connect() as conn:
        row = (await conn.execute(_SELECT.where(users.c.name == name))).first()
    return _view(row) if row else None


async def ledger_page(
    engine: AsyncEngine, user_id: int, offset: int, limit: int
) -> tuple[int, list[Any]]:
    """(entries in all, one page of them, newest first): a user's statement for the admin API."""
    where = ledger_entries.c.user_id == user_id
    total_q = select(func.count()).select_from(ledger_entries).where(where)
    page_q = select(ledger_entries).where(where).order_by(ledger_entries.c.id.desc())
    async with engine.connect() as conn:
        total = int((await conn.execute(total_q)).scalar() or 0)
        rows = (await conn.execute(page_q.offset(offset).limit(limit))).all()
    return total, list(rows)
