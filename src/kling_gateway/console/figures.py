"""Pure arithmetic behind the overview: percentiles, success rate, per-day series."""

from __future__ import annotations

import datetime as dt
import math

from ..storage.console_reads import DAY_MS


def percentile(values_ms: list[int], p: int) -> float | None:
    """Nearest-rank percentile in seconds; None without data."""
    if not values_ms:
        return None
    ordered = sorted(values_ms)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1] / 1000


def success_rate(counts: dict[str, int]) -> float | None:
    """Succeeded over finished (succeed + failed); tasks in flight or rejected upstream do not count."""
    done = counts.get("succeed", 0) + counts.get("failed", 0)
    return counts.get("succeed", 0) / done if done else None


def series(per_day: dict[int, int], first_day: int, days: int) -> list[int]:
    return [per_day.get(first_day + i, 0) for i in range(days)]


def day_labels(first_day: int, days: int) -> list[str]:
    return [
        dt.datetime.fromtimestamp((first_day + i) * DAY_MS / 1000, dt.UTC).strftime("%m-%d")
        for i in range(days)
    ]
