"""Metrics read from the database when ``/metrics`` is scraped: the state every process shares.

Counters in one process cannot answer "how many tasks are processing" when several workers and nodes
change them, so these are gauges computed from the tables at scrape time, not on the request path:

- ``kgw_tasks{status}``: ``SELECT status, COUNT(*) … GROUP BY status`` (a scan of ``tasks``; about a
  millisecond per ten thousand rows on SQLite);
- ``kgw_poll_due_tasks`` / ``kgw_poll_lag_seconds``: unfinished tasks whose next look is due, and
  how far past due the oldest one is (index range on ``next_poll_at``). A lag that keeps growing
  means the refresher is not keeping up; it is bounded by the poll interval when it is;
- ``kgw_webhook_pending`` / ``kgw_webhook_lag_seconds``: the same for the outbound webhook queue;
- ``kgw_ledger_entries{reason}`` / ``kgw_ledger_amount_micro{reason}``: count and
  signed sum per ledger reason, read from ``ledger_entries`` when that table exists
  (skipped, not failed, when it does not).

Concurrent scrapes share one in-flight read instead of each querying.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ..domain.task import TaskStatus

log = logging.getLogger("kling_gateway.metrics")

_TASKS_BY_STATUS = text("SELECT status, COUNT(*) FROM tasks GROUP BY status")
_POLL_DUE = text("SELECT COUNT(*), MIN(next_poll_at) FROM tasks WHERE next_poll_at <= :now")
_WEBHOOK_DUE = text(
    "SELECT COUNT(*), MIN(CASE WHEN next_attempt_at <= :now THEN next_attempt_at END) "
    "FROM webhook_deliveries WHERE next_attempt_at IS NOT NULL"
)
_LEDGER = text(
    "SELECT reason, COUNT(*), COALESCE(SUM(amount_micro), 0) FROM ledger_entries GROUP BY reason"
)


@dataclass(slots=True)
class StoreSnapshot:
    tasks: dict[str, int] = field(default_factory=lambda: {s.value: 0 for s in TaskStatus})
    poll_due: int = 0
    poll_lag_seconds: float = 0.0
    webhook_pending: int = 0
    webhook_lag_seconds: float = 0.0
    # reason -> (entries, amount_micro); None: no table
    ledger: dict[str, tuple[int, int]] | None = None


def _lag(now_ms: int, oldest: int | None) -> float:
    return max(0.0, (now_ms - int(oldest)) / 1000) if oldest is not None else 0.0


async def read_snapshot(engine: AsyncEngine, now_ms: int) -> StoreSnapshot:
    snap = StoreSnapshot()
    async with engine.connect() as conn:
        for status, count in (await conn.execute(_TASKS_BY_STATUS)).all():
            snap.tasks[str(status)] = int(count)
        due, oldest = (await conn.execute(_POLL_DUE, {"now": now_ms})).one()
        snap.poll_due, snap.poll_lag_seconds = int(due), _lag(now_ms, oldest)
        pending, oldest = (await conn.execute(_WEBHOOK_DUE, {"now": now_ms})).one()
        snap.webhook_pending, snap.webhook_lag_seconds = int(pending), _lag(now_ms, oldest)
        # last: on PostgreSQL a failed statement ends the transaction
        snap.ledger = await _ledger(conn)
    return snap


async def _ledger(conn: AsyncConnection) -> dict[str, tuple[int, int]] | None:
    try:
        rows = (await conn.execute(_LEDGER)).all()
    except SQLAlchemyError:  # no ledger_entries table in this database (yet)
        log.debug("ledger totals skipped: ledger_entries cannot be read", exc_info=True)
        return None
    return {str(reason): (int(count), int(total)) for reason, count, total in rows}


class StoreCollector:
    """A collector over the last snapshot; ``refresh`` reads a new one (the scrape
    handler awaits it)."""

    def __init__(self) -> None:
        self.snapshot: StoreSnapshot | None = None
        self._inflight: asyncio.Task[StoreSnapshot] | None = None

    async def refresh(self, engine: AsyncEngine, now_ms: int) -> StoreSnapshot:
        task = self._inflight
        if task is None or task.done():
            task = self._inflight = asyncio.ensure_future(read_snapshot(engine, now_ms))
            # Marks a failure as seen even when every waiter went away (no "never
            # retrieved" warning).
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
        # Shielded: a scraper that disconnects must not cancel the read another
        # scrape is waiting for.
        self.snapshot = await asyncio.shield(task)
        return self.snapshot

    def collect(self) -> Iterable[Metric]:
        snap = self.snapshot
        if snap is None:
            return
        tasks = GaugeMetricFamily("kgw_tasks", "Tasks in the database by status", labels=["status"])
        for status, count in sorted(snap.tasks.items()):
            tasks.add_metric([status], count)
        yield tasks
        yield GaugeMetricFamily(
            "kgw_poll_due_tasks",
            "Unfinished tasks whose next upstream read is due now",
            value=snap.poll_due,
        )
        yield GaugeMetricFamily(
            "kgw_poll_lag_seconds",
            "How far past its due time the most overdue task's next upstream read is "
            "(0 when none is due)",
            value=snap.poll_lag_seconds,
        )
        yield GaugeMetricFamily(
            "kgw_webhook_pending",
            "Outbound webhook events not yet delivered or given up",
            value=snap.webhook_pending,
        )
        yield GaugeMetricFamily(
            "kgw_webhook_lag_seconds",
            "How far past its due time the most overdue webhook attempt is (0 when none is due)",
            value=snap.webhook_lag_seconds,
        )
        if snap.ledger is not None:
            entries = GaugeMetricFamily(
                "kgw_ledger_entries", "Ledger entries by reason", labels=["reason"]
            )
            amount = GaugeMetricFamily(
                "kgw_ledger_amount_micro",
                "Signed sum of ledger amounts by reason, in micro-credits "
                "(negative = taken from balances)",
                labels=["reason"],
            )
            for reason, (count, total) in sorted(snap.ledger.items()):
                entries.add_metric([reason], count)
                amount.add_metric([reason], total)
            yield entries
            yield amount
