"""The outbound webhook queue: ``webhook_deliveries`` rows (one per task event) and
their attempt log.

Rows are written by the status change itself (storage/tasks.py); this store only
hands them to senders and records what happened. A sender **claims** a due row by
setting ``lease_until``; while the lease holds no other worker or node takes it, so
one event is not sent twice at once, and a crashed sender's rows come back when the
lease runs out. The lease value doubles as a fencing token: a sender whose lease was
taken over cannot overwrite the new holder's schedule with its stale outcome.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from .tables import users, webhook_attempts, webhook_deliveries

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
MAX_ERROR_CHARS = 500


@dataclass(frozen=True, slots=True)
class Delivery:
    # the event id, sent as webhook-id: the same on every retry so receivers can deduplicate
    id: str
    task_id: str
    user_id: int
    task_status: str
    url: str
    payload: str
    status: str
    attempts: int
    next_attempt_at: int | None
    lease_until: int | None
    last_status_code: int | None
    last_error: str | None
    created_at: int
    updated_at: int
    delivered_at: int | None


@dataclass(frozen=True, slots=True)
class Attempt:
    id: int
    delivery_id: str
    attempted_at: int
    status_code: int | None  # None when no HTTP answer came back (refused, timeout, TLS…)
    error: str | None
    latency_ms: int


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one send produced, and what the queue should do next (decided by the worker)."""

    attempted_at: int
    latency_ms: int
    status_code: int | None
    error: str | None
    status: str  # PENDING (retry at next_attempt_at) | DELIVERED | FAILED (gave up)
    next_attempt_at: int | None


_DELIVERY_FIELDS = tuple(f.name for f in fields(Delivery))


def _delivery(row: Any) -> Delivery:
    m = row._mapping
    return Delivery(**{name: m[name] for name in _DELIVERY_FIELDS})


def _attempt(row: Any) -> Attempt:
    m = row._mapping
    return Attempt(
        m["id"], m["delivery_id"], m["attempted_at"], m["status_code"], m["error"], m["latency_ms"]
    )


def _claimable(now_ms: int) -> Any:
    d = webhook_deliveries.c
    return and_(
        d.status == PENDING,
        d.next_attempt_at <= now_ms,
        or_(d.lease_until.is_(None), d.lease_until < now_ms),
    )


class DeliveryStore:
    __slots__ = ("_engine", "_postgres")

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._postgres = engine.dialect.name == "postgresql"

    async def claim(self, now_ms: int, lease_ms: int, limit: int) -> list[Delivery]:
        """Take up to ``limit`` due rows for ``lease_ms``, oldest due first. Every
        returned row carries the new ``lease_until``, which the caller hands back to
        ``record`` as its fencing token."""
        lease_until = now_ms + lease_ms
        if self._postgres:
            return await self._claim_skip_locked(now_ms, lease_until, limit)
        return await self._claim_cas(now_ms, lease_until, limit)

    async def _claim_skip_locked(self, now_ms: int, lease_until: int, limit: int) -> list[Delivery]:
        """PostgreSQL: rows another transaction is claiming are skipped, not waited
        on, so concurrent workers split the due rows between them instead of queueing
        behind one another."""
        d = webhook_deliveries.c
        pick = (
            select(d.id)
            .where(_claimable(now_ms))
            .order_by(d.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        async with self._engine.begin() as conn:
            ids = list((await conn.execute(pick)).scalars().all())
            if not ids:
                return []
            stmt = (
                update(webhook_deliveries)
                .where(d.id.in_(ids))
                .values(lease_until=lease_until)
                .returning(*webhook_deliveries.c)
            )
            rows = (await conn.execute(stmt)).all()
        return sorted((_delivery(r) for r in rows), key=lambda x: (x.next_attempt_at or 0, x.id))

    async def _claim_cas(self, now_ms: int, lease_until: int, limit: int) -> list[Delivery]:
        """SQLite (no row locks): read candidates, then take each with a compare-and-set on the
        lease; a row somebody else took in between matches nothing and is left to them."""
        d = webhook_deliveries.c
        pick = (
            select(webhook_deliveries)
            .where(_claimable(now_ms))
            .order_by(d.next_attempt_at)
            .limit(limit)
        )
        async with self._engine.connect() as conn:
            candidates = [_delivery(r) for r in (await conn.execute(pick)).all()]
        claimed: list[Delivery] = []
        async with self._engine.begin() as conn:
            for c in candidates:
                stmt = (
                    update(webhook_deliveries)
                    .where(d.id == c.id, _claimable(now_ms))
                    .values(lease_until=lease_until)
                )
                if (await conn.execute(stmt)).rowcount == 1:
                    claimed.append(replace(c, lease_until=lease_until))
        return claimed

    async def record(self, delivery: Delivery, outcome: Outcome) -> bool:
        """Log the attempt and move the row on. Returns False when the row had moved on without us:
        a success then still marks it delivered (the receiver has it); a failure leaves the new
        holder's or the operator's schedule alone."""
        d = webhook_deliveries.c
        values: dict[str, Any] = {
            "attempts": d.attempts + 1,
            "status": outcome.status,
            "next_attempt_at": outcome.next_attempt_at if outcome.status == PENDING else None,
            "last_status_code": outcome.status_code,
            "last_error": _clip(outcome.error),
            "lease_until": None,
            "updated_at": outcome.attempted_at,
        }
        if outcome.status == DELIVERED:
            values["delivered_at"] = outcome.attempted_at
            guard = d.status != DELIVERED
        else:
            guard = and_(d.status == PENDING, d.lease_until == delivery.lease_until)
        async with self._engine.begin() as conn:
            await self._log(conn, delivery.id, outcome)
            res = await conn.execute(
                update(webhook_deliveries).where(d.id == delivery.id, guard).values(**values)
            )
        return res.rowcount == 1

    @staticmethod
    async def _log(conn: AsyncConnection, delivery_id: str, outcome: Outcome) -> None:
        await conn.execute(
            webhook_attempts.insert().values(
                delivery_id=delivery_id,
                attempted_at=outcome.attempted_at,
                status_code=outcome.status_code,
                error=_clip(outcome.error),
                latency_ms=outcome.latency_ms,
            )
        )

    async def get(self, delivery_id: str) -> Delivery | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(webhook_deliveries).where(webhook_deliveries.c.id == delivery_id)
                )
            ).first()
        return _delivery(row) if row else None

    async def for_task(self, task_id: str) -> list[Delivery]:
        d = webhook_deliveries.c
        stmt = select(webhook_deliveries).where(d.task_id == task_id).order_by(d.created_at, d.id)
        async with self._engine.connect() as conn:
            return [_delivery(r) for r in (await conn.execute(stmt)).all()]

    async def attempts_for_task(self, task_id: str) -> dict[str, list[Attempt]]:
        """Every attempt of every delivery of the task, oldest first, by delivery id."""
        a = webhook_attempts.c
        stmt = (
            select(webhook_attempts)
            .join(webhook_deliveries, webhook_deliveries.c.id == a.delivery_id)
            .where(webhook_deliveries.c.task_id == task_id)
            .order_by(a.attempted_at, a.id)
        )
        out: dict[str, list[Attempt]] = {}
        async with self._engine.connect() as conn:
            for row in (await conn.execute(stmt)).all():
                attempt = _attempt(row)
                out.setdefault(attempt.delivery_id, []).append(attempt)
        return out

    async def attempts(self, delivery_id: str) -> list[Attempt]:
        a = webhook_attempts.c
        stmt = (
            select(webhook_attempts)
            .where(a.delivery_id == delivery_id)
            .order_by(a.attempted_at, a.id)
        )
        async with self._engine.connect() as conn:
            return [_attempt(r) for r in (await conn.execute(stmt)).all()]

    async def redeliver(self, delivery_id: str, now_ms: int) -> bool:
        """Queue the event again, due now, whatever its state. Its id stays the same:
        to the receiver it is the same event once more, which its deduplication by
        webhook-id expects. Clearing the lease also fences off a send in flight (its
        failure can no longer reschedule the row)."""
        stmt = (
            update(webhook_deliveries)
            .where(webhook_deliveries.c.id == delivery_id)
            .values(status=PENDING, next_attempt_at=now_ms, lease_until=None, updated_at=now_ms)
        )
        async with self._engine.begin() as conn:
            res = await conn.execute(stmt)
        return res.rowcount == 1


class UserNotFound(LookupError):
    pass


class WebhookSecrets:
    """``users.webhook_secret_enc``: the Fernet-encrypted signing secret of each
    user's callbacks."""

    __slots__ = ("_engine",)

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def get(self, user_id: int) -> str | None:
        """The stored (encrypted) secret, None when there is none yet;
        ``UserNotFound`` for no user."""
        stmt = select(users.c.webhook_secret_enc).where(users.c.id == user_id)
        async with self._engine.connect() as conn:
            row = (await conn.execute(stmt)).first()
        if row is None:
            raise UserNotFound(f"no user with id {user_id}")
        return None if row[0] is None else str(row[0])

    async def set(self, user_id: int, secret_enc: str, *, only_if_absent: bool = False) -> bool:
        """Store ``secret_enc``; with ``only_if_absent`` a compare-and-set, so two first uses racing
        each other agree on one secret (the loser reads the winner's)."""
        stmt = update(users).where(users.c.id == user_id).values(webhook_secret_enc=secret_enc)
        if only_if_absent:
            stmt = stmt.where(users.c.webhook_secret_enc.is_(None))
        async with self._engine.begin() as conn:
            res = await conn.execute(stmt)
        return res.rowcount == 1


def _clip(error: str | None) -> str | None:
    return None if error is None else error[:MAX_ERROR_CHARS]
