"""SQL behind the gateway's limits: in-flight counts and the per-key token bucket
(services/limits.py).

In-flight counts (statements in task_sql.py) read ``tasks`` through three **partial** indexes
(migrations 0005 and 0007) that hold only the rows in ``queued``/``submitted``/``processing``: they
stay as small as the work in progress, whatever the table's history, and a count is an index-only
scan. The queries spell the status filter as the same literal text as the index predicate, never as
bound parameters: SQLite (and PostgreSQL's generic plans for prepared statements) can only use a
partial index when it can *prove* the query's filter implies the predicate.

The token bucket is one row per API key (``rate_buckets``), changed by one upsert
whose refill arithmetic runs in SQL, so gateway processes sharing the database share
the bucket without a read-then-write race. Amounts are integer **nano-tokens**:
exact, comparable in SQL, and the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Integer,
    Select,
    and_,
    bindparam,
    case,
    column,
    literal_column,
    select,
    table,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.dml import Insert

from .task_sql import active_for_key as _key_count
from .task_sql import active_for_user as _user_count
from .task_sql import active_on_upstream as _upstream_count

NANO = 1_000_000_000  # nano-tokens per token

# A lightweight table clause: the schema is owned by the migration (and tables.py), this module only
# needs the names to build statements.
rate_buckets = table(
    "rate_buckets",
    column("key_id", Integer),
    column("tokens_nano", BigInteger),
    column("updated_at", BigInteger),
)


class LimitStore:
    """Statements are built once per store (SQLAlchemy then reuses their compiled form), so a call
    costs one round trip and no statement construction."""

    __slots__ = ("_counts", "_engine", "_take", "_upstream", "scopes")

    def __init__(self, engine: AsyncEngine, *, user: bool, key: bool, upstream: bool) -> None:
        self._engine = engine
        self.scopes = (user, key, upstream)
        parts = [
            make()
            for wanted, make in (
                (user, _user_count),
                (key, _key_count),
                (upstream, _upstream_count),
            )
            if wanted
        ]
        # One SELECT of scalar subqueries: every configured count in one round trip.
        self._counts: Select[Any] | None = select(*parts) if parts else None
        self._upstream: Select[Any] = select(_upstream_count())
        self._take = _take_stmt(engine.dialect.name)

    async def in_flight(
        self, user_id: int, key_id: int, account_id: int, model: str
    ) -> tuple[int, int, int]:
        """(user, key, upstream) in-flight counts; a scope the store was not built
        for reads as 0."""
        if self._counts is None:
            return 0, 0, 0
        params = {"user_id": user_id, "key_id": key_id, "account_id": account_id, "model": model}
        async with self._engine.connect() as conn:
            row = (await conn.execute(self._counts, params)).one()
        values = iter(row)
        user, key, upstream = (int(next(values)) if wanted else 0 for wanted in self.scopes)
        return user, key, upstream

    async def upstream_in_flight(self, account_id: int, model: str) -> int:
        async with self._engine.connect() as conn:
            value = (
                await conn.execute(self._upstream, {"account_id": account_id, "model": model})
            ).scalar()
        return int(value or 0)

    async def take_token(
        self, key_id: int, now_ms: int, *, rate_per_second: float, burst: int
    ) -> bool:
        """Take one token from ``key_id``'s bucket; False when it holds less than one.

        A missing row is a full bucket (inserted holding ``burst - 1``). The refill
        is computed from the row's own ``updated_at``, with elapsed time clamped: a
        process whose clock lags never drains the bucket or moves ``updated_at``
        back, and a long idle key cannot overflow BIGINT arithmetic."""
        rate = max(1, round(rate_per_second * NANO / 1000))  # nano-tokens per millisecond
        cap = burst * NANO
        params = {
            "key_id": key_id,
            "now": now_ms,
            "rate": rate,
            "cap": cap,
            "fill_ms": -(-cap // rate),
            "start": cap - NANO,
            "one": NANO,
        }
        async with self._engine.begin() as conn:
            result = await conn.execute(self._take, params)
        return bool(result.rowcount)


def _take_stmt(dialect: str) -> Insert:
    """``INSERT … ON CONFLICT (key_id) DO UPDATE … WHERE refilled >= 1 token``: one
    statement whatever the row's state; it changes one row when a token was taken and
    none when the bucket is empty."""
    big = BigInteger()
    now = bindparam("now", type_=big)
    rate = bindparam("rate", type_=big)
    cap = bindparam("cap", type_=big)
    one = bindparam("one", type_=big)
    fill_ms = bindparam("fill_ms", type_=big)
    stored = literal_column("rate_buckets.tokens_nano", big)
    updated = literal_column("rate_buckets.updated_at", big)
    elapsed = now - updated
    grown = stored + elapsed * rate
    # CASE evaluates its branches in order, so the multiplication only runs when it cannot overflow.
    refilled = case(
        (elapsed <= 0, stored),
        (elapsed >= fill_ms, cap),
        (grown >= cap, cap),
        else_=grown,
    )
    values = {
        "key_id": bindparam("key_id", type_=Integer()),
        "tokens_nano": bindparam("start", type_=big),
        "updated_at": now,
    }
    changes = {"tokens_nano": refilled - one, "updated_at": case((elapsed > 0, now), else_=updated)}
    where = and_(refilled >= one)
    if dialect == "postgresql":
        pg = postgresql.insert(rate_buckets).values(values)
        return pg.on_conflict_do_update(index_elements=["key_id"], set_=changes, where=where)
    if dialect == "sqlite":
        lite = sqlite.insert(rate_buckets).values(values)
        return lite.on_conflict_do_update(index_elements=["key_id"], set_=changes, where=where)
    raise RuntimeError(f"rate buckets: unsupported database dialect {dialect!r}")
