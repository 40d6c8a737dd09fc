"""Balances, key quotas, prices and the append-only ledger.

The money moved on the request path is asked for by name: a ``Reserve`` rides on the task insert, a
``Close`` on the terminal status compare-and-set (``TaskStore``), each in the *same* transaction: a
reserve exists exactly when its task row does, and a close happens exactly once, guarded twice — by
the status CAS and by the ledger's unique ``(task_id, kind)``. Their statements are compiled here.

Lock order, on PostgreSQL: the user row first, then task and ledger rows, then the key
(create_pg.py says why); a close takes the user row before its compare-and-set (``lock_user``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BindParameter, bindparam, func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine

from .create_pg import lock_owner
from .hotpath import HotPath, Step
from .tables import api_keys, ledger_entries, prices, users

RESERVE, CLOSE, CREDIT, DEBIT = "reserve", "close", "credit", "debit"
_LEDGER_COLUMNS = tuple(c.name for c in ledger_entries.c if c.name != "id")


@dataclass(frozen=True, slots=True)
class Reserve:
    """Debit the user (and the key's quota) by ``amount`` for the task being inserted."""

    user_id: int
    key_id: int | None
    amount: int
    public_model: str
    now_ms: int


@dataclass(frozen=True, slots=True)
class Close:
    """Give ``back`` micro-credits of a task's reserve back (release after settle, or
    the refund)."""

    user_id: int
    key_id: int | None
    task_id: str
    back: int
    charged: int
    reason: str
    public_model: str
    now_ms: int


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    id: int
    user_id: int
    key_id: int | None
    task_id: str | None
    kind: str
    reason: str
    amount_micro: int
    charged_micro: int | None
    public_model: str | None
    note: str | None
    created_at: int


class MoneyStatements:
    """The request-path money statements, compiled for the hot path's dialect. No
    RETURNING: the drivers count the rows a statement changed (on SQLite a RETURNING
    clause costs a temporary b-tree per run)."""

    def __init__(self, hot: HotPath, dialect_name: str | None = None) -> None:
        self._hot = hot
        dialect_name = dialect_name or hot.dialect.name
        amt: BindParameter[int] = bindparam("amt")
        self._debit_user = hot.compile(
            update(users)
            .where(users.c.id == bindparam("uid"), users.c.balance_micro >= amt)
            .values(balance_micro=users.c.balance_micro - amt)
        )
        self._debit_key = hot.compile(
            update(api_keys)
            .where(
                api_keys.c.id == bindparam("kid"),
                (api_keys.c.quota_micro.is_(None))
                | (api_keys.c.spent_micro + amt <= api_keys.c.quota_micro),
            )
            .values(spent_micro=api_keys.c.spent_micro + amt)
        )
        self._lock_user = hot.compile(lock_owner(bindparam("uid")))
        self._credit_user = hot.compile(
            update(users)
            .where(users.c.id == bindparam("uid"))
            .values(balance_micro=users.c.balance_micro + amt)
        )
        self._uncharge_key = hot.compile(
            update(api_keys)
            .where(api_keys.c.id == bindparam("kid"))
            .values(spent_micro=api_keys.c.spent_micro - amt)
        )
        columns: dict[str, BindParameter[Any]] = {name: bindparam(name) for name in _LEDGER_COLUMNS}
        self._entry = hot.compile(ledger_entries.insert().values(columns))
        insert = pg_insert if dialect_name == "postgresql" else sqlite_insert
        self._entry_once = hot.compile(
            insert(ledger_entries).values(columns).on_conflict_do_nothing()
        )

    def reserve_steps(self, op: Reserve, task_id: str) -> tuple[list[Step], list[Step]]:
        """(steps before the task insert, steps after it). Step 0 fails on balance,
        step 1 on key quota."""
        amount, user_id, key_id = op.amount, op.user_id, op.key_id
        before = [
            Step(
                self._debit_user.sql,
                self._debit_user.args({"uid": user_id, "amt": amount}),
                require=True,
            )
        ]
        if key_id is not None:
            before.append(
                Step(
                    self._debit_key.sql,
                    self._debit_key.args({"kid": key_id, "amt": amount}),
                    require=True,
                )
            )
        return before, [Step(self._entry.sql, self._entry.args(reserve_entry(op, task_id)))]

    def lock_user(self, op: Close) -> list[Step]:
        """PostgreSQL: the step that takes the user row, to run before the task's compare-and-set
        (the lock order above). SQLite runs one writer at a time: nothing to order."""
        if not self._hot.postgres:
            return []
        return [Step(self._lock_user.sql, self._lock_user.args({"uid": op.user_id}))]

    def close_steps(self, op: Close) -> list[Step]:
        user_id, key_id, back = op.user_id, op.key_id, op.back
        entry = _entry_values(
            user_id=user_id,
            key_id=key_id,
            task_id=op.task_id,
            kind=CLOSE,
            reason=op.reason,
            amount_micro=back,
            charged_micro=op.charged,
            public_model=op.public_model,
            created_at=op.now_ms,
        )
        steps = [
            Step(self._entry_once.sql, self._entry_once.args(entry)),
            Step(
                self._credit_user.sql,
                self._credit_user.args({"uid": user_id, "amt": back}),
                only_if_prev=True,
            ),
        ]
        if key_id is not None:
            steps.append(
                Step(
                    self._uncharge_key.sql,
                    self._uncharge_key.args({"kid": key_id, "amt": back}),
                    only_if_prev=True,
                )
            )
        return steps

    async def adjust(
        self, *, user_id: int, amount: int, reason: str, note: str | None, now_ms: int
    ) -> bool:
        """Operator credit (amount > 0) or debit (amount < 0); False when a debit would take the
        balance below 0 (then nothing changed)."""
        entry = _entry_values(
            user_id=user_id,
            kind=CREDIT if amount >= 0 else DEBIT,
            reason=reason,
            amount_micro=amount,
            note=note,
            created_at=now_ms,
        )
        if amount >= 0:
            move = Step(
                self._credit_user.sql,
                self._credit_user.args({"uid": user_id, "amt": amount}),
                require=True,
            )
        else:
            move = Step(
                self._debit_user.sql,
                self._debit_user.args({"uid": user_id, "amt": -amount}),
                require=True,
            )
        return (
            await self._hot.run_tx([move, Step(self._entry.sql, self._entry.args(entry))]) is None
        )


def _entry_values(**values: Any) -> dict[str, Any]:
    row = dict.fromkeys(_LEDGER_COLUMNS)
    row.update(values)
    return row


def reserve_entry(op: Reserve, task_id: str) -> dict[str, Any]:
    """The ledger row of a reserve: the debit, negative."""
    return _entry_values(
        user_id=op.user_id,
        key_id=op.key_id,
        task_id=task_id,
        kind=RESERVE,
        reason=RESERVE,
        amount_micro=-op.amount,
        public_model=op.public_model,
        created_at=op.now_ms,
    )


class MoneyStore:
    """Reads (balances, statements, usage) and price data, on the SQLAlchemy engine."""

    __slots__ = ("_engine",)

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def balance(self, user_id: int) -> int:
        async with self._engine.connect() as conn:
            value = (
                await conn.execute(select(users.c.balance_micro).where(users.c.id == user_id))
            ).scalar()
        return int(value or 0)

    async def multiplier(self, user_id: int) -> str:
        async with self._engine.connect() as conn:
            value = (
                await conn.execute(select(users.c.price_multiplier).where(users.c.id == user_id))
            ).scalar()
        return str(value or "1")

    async def set_multiplier(self, user_id: int, multiplier: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                update(users).where(users.c.id == user_id).values(price_multiplier=multiplier)
            )

    async def set_quota(self, key_id: int, quota_micro: int | None) -> bool:
        async with self._engine.begin() as conn:
            res = await conn.execute(
                update(api_keys).where(api_keys.c.id == key_id).values(quota_micro=quota_micro)
            )
        return res.rowcount > 0

    async def entries(
        self, user_id: int, since_ms: int = 0, until_ms: int | None = None
    ) -> list[LedgerEntry]:
        stmt = select(ledger_entries).where(
            ledger_entries.c.user_id == user_id, ledger_entries.c.created_at >= since_ms
        )
        if until_ms is not None:
            stmt = stmt.where(ledger_entries.c.created_at < until_ms)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(stmt.order_by(ledger_entries.c.id))).all()
        return [LedgerEntry(**r._mapping) for r in rows]

    async def ledger_sum(self, user_id: int) -> int:
        async with self._engine.connect() as conn:
            value = (
                await conn.execute(
                    select(func.coalesce(func.sum(ledger_entries.c.amount_micro), 0)).where(
                        ledger_entries.c.user_id == user_id
                    )
                )
            ).scalar()
        return int(value or 0)

    async def price_rows(self) -> list[tuple[str, str, bool, bool, str]]:
        async with self._engine.connect() as conn:
            rows = (await conn.execute(select(prices))).all()
        return [
            (r.public_model, r.mode, bool(r.sound), bool(r.voice), r.credits_per_second)
            for r in rows
        ]

    async def replace_prices(
        self, rows: Sequence[tuple[str, str, bool, bool, str]], now_ms: int
    ) -> None:
        """Every node loads its prices at start; on PostgreSQL, nodes starting
        together take turns (the table lock also lets readers through) instead of all
        but one dying on a duplicate key."""
        async with self._engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                await conn.execute(text("LOCK TABLE prices IN SHARE ROW EXCLUSIVE MODE"))
            await conn.execute(prices.delete())
            if rows:
                await conn.execute(
                    prices.insert(),
                    [
                        {
                            "public_model": m,
                            "mode": mode,
                            "sound": s,
                            "voice": v,
                            "credits_per_second": p,
                            "updated_at": now_ms,
                        }
                        for m, mode, s, v, p in rows
                    ],
                )
