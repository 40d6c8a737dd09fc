"""The operator's task search and overview figures, decided without I/O: which filters a query
string asks for (400/1201 naming the parameter otherwise), and the percentiles and rates an overview
shows."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .task import TaskStatus

# Every task the gateway runs today is text-to-video; the filter exists so a script written now
# keeps working when other kinds arrive, and an unknown kind is refused rather than silently
# matching nothing.
KINDS = ("text2video",)
STATUSES = tuple(s.value for s in TaskStatus)
MAX_PAGE_SIZE = 500
_MAX_MS = 9_999_999_999_999


@dataclass(frozen=True, slots=True)
class TaskFilter:
    status: str | None = None
    user: str | None = None
    model: str | None = None
    kind: str | None = None
    since_ms: int | None = None  # created_at ≥
    until_ms: int | None = None  # created_at <
    external_task_id: str | None = None  # the client's own id (with ``user``)
    page: int = 1
    page_size: int = 50


def parse_filter(query: Mapping[str, str]) -> TaskFilter:
    """ValueError names the parameter; unknown parameters are refused too (a typo must not widen a
    search silently)."""
    unknown = sorted(set(query) - _PARAMS)
    if unknown:
        raise ValueError(f"{unknown[0]}: unknown parameter (allowed: {', '.join(sorted(_PARAMS))})")
    status, kind = query.get("status"), query.get("kind")
    if status is not None and status not in STATUSES:
        raise ValueError(
            f"status: {status!r} is not a task status (allowed: {', '.join(STATUSES)})"
        )
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind: unknown task kind {kind!r} (known: {', '.join(KINDS)})")
    found = TaskFilter(
        status=status,
        user=_text(query, "user"),
        model=_text(query, "model"),
        kind=kind,
        since_ms=_int(query, "since", 0, _MAX_MS),
        until_ms=_int(query, "until", 0, _MAX_MS),
        external_task_id=_text(query, "external_task_id"),
        page=_int(query, "page", 1, 100_000) or 1,
        page_size=_int(query, "page_size", 1, MAX_PAGE_SIZE) or 50,
    )
    if found.external_task_id is not None and found.user is None:
        raise ValueError("external_task_id: give user too (external ids are unique per user)")
    return found


_PARAMS = frozenset(
    {"status", "user", "model", "kind", "since", "until", "external_task_id", "page", "page_size"}
)


def _text(query: Mapping[str, str], name: str) -> str | None:
    value = query.get(name)
    if value is not None and not 1 <= len(value) <= 255:
        raise ValueError(f"{name}: must be 1–255 characters")
    return value


def _int(query: Mapping[str, str], name: str, low: int, high: int) -> int | None:
    value = query.get(name)
    if value is None:
        return None
    if not (value.isascii() and value.isdigit() and len(value) <= 16 and low <= int(value) <= high):
        raise ValueError(f"{name}: must be an integer from {low} to {high}")
    return int(value)


# ---------------------------------------------------------------------------------------- overview
def percentile(sorted_values: Sequence[int], p: float) -> int | None:
    """Nearest-rank percentile (the smallest value with at least p % of values at or below it)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def success_rate(counts: Mapping[str, int]) -> float | None:
    """Succeeded ÷ finished (succeed + failed + rejected); None before anything has finished."""
    done = sum(counts.get(s, 0) for s in ("succeed", "failed", "rejected"))
    return round(counts.get("succeed", 0) / done, 4) if done else None
