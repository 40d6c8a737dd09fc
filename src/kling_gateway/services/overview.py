"""The operator's overview: tasks per status and the success rate over a window, render-time
percentiles of succeeded tasks (``updated_at − created_at``: the gateway's view, submit to the poll
or callback that saw the result), tasks and spend per UTC day, and the upstream accounts' health as
``channels list`` shows it."""

from __future__ import annotations

from typing import Any

from ..domain.overrides import DAY_MS, day_start_ms, utc_day
from ..domain.pricing import from_micro
from ..domain.task_filter import percentile, success_rate
from ..storage import overview as figures
from . import channel_admin
from .admin import AdminError
from .gateway import Gateway

MAX_WINDOW_HOURS = 24 * 90
MAX_DAYS = 90


def parse_window(query: dict[str, str]) -> tuple[int, int]:
    """(window in hours, days of history): ``window_hours`` (default 24) and ``days`` (default
    14)."""
    unknown = sorted(set(query) - {"window_hours", "days"})
    if unknown:
        raise AdminError(f"{unknown[0]}: unknown parameter (allowed: days, window_hours)")
    return (
        _bounded(query, "window_hours", 24, MAX_WINDOW_HOURS),
        _bounded(query, "days", 14, MAX_DAYS),
    )


def _bounded(query: dict[str, str], name: str, default: int, high: int) -> int:
    value = query.get(name)
    if value is None:
        return default
    if not (value.isascii() and value.isdigit() and len(value) <= 6 and 1 <= int(value) <= high):
        raise AdminError(f"{name}: must be an integer from 1 to {high}")
    return int(value)


async def overview(gw: Gateway, window_hours: int, days: int) -> dict[str, Any]:
    now = gw.now_ms()
    since = now - window_hours * 3_600_000
    counts = await figures.status_counts(gw.engine, since)
    times = await figures.render_times(gw.engine, since)
    first_day = day_start_ms(now) - (days - 1) * DAY_MS
    per_day = await figures.tasks_per_day(gw.engine, first_day)
    spend = await figures.spend_per_day(gw.engine, first_day)
    day_numbers = [first_day // DAY_MS + i for i in range(days)]
    return {
        "window_hours": window_hours,
        "tasks_by_status": counts,
        "tasks": sum(counts.values()),
        "success_rate": success_rate(counts),
        "render_ms": {
            "count": len(times),
            "p50": percentile(times, 50),
            "p90": percentile(times, 90),
            "p99": percentile(times, 99),
        },
        "days": [
            {
                "day": utc_day(d * DAY_MS),
                "tasks": per_day.get(d, 0),
                "spend": from_micro(max(0, spend.get(d, 0))),
            }
            for d in day_numbers
        ],
        "accounts": [_health(c) for c in await channel_admin.describe(gw)],
    }


def _health(view: dict[str, Any]) -> dict[str, Any]:
    keys = ("name", "enabled", "state", "in_flight", "probe", "calls", "errors", "latency_ms")
    return {k: view[k] for k in keys} | {"cooldown_reason": view["cooldown_reason"]}
