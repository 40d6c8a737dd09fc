"""Form text to the admin API's JSON bodies. The console decides nothing here: a blank field is the
API's ``null`` (the default, no cap, every model), a whole number travels as a number and anything
else as the text typed, so the service refuses it with the API's own message beside the field."""

from __future__ import annotations

import datetime as dt
from typing import Any

from ..domain.overrides import LIMIT_FIELDS
from .api import ApiError
from .web import Form

DAY_MS = 86_400_000
_INTEGER_FIELDS = frozenset({"max_in_flight", "rate_burst", "priority", "weight"})
# Where an API field's error shows when the form asks for it in another shape.
_SHOWN_AT = {"expires_at": "expires_days", "credentials": "access_key"}


def number(raw: str) -> int | str | None:
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        return raw


def limits(form: Form) -> dict[str, Any]:
    """The limit fields the form carries; a blank one clears that override."""
    out: dict[str, Any] = {}
    for name in LIMIT_FIELDS:
        if name in form.values:
            raw = form.get(name)
            out[name] = number(raw) if name in _INTEGER_FIELDS else raw or None
    return out


def names(raw: str) -> list[str] | None:
    """Space- or comma-separated names; None (every one) when blank."""
    found = [n for n in raw.replace(",", " ").split() if n]
    return found or None


def expires_at(form: Form, now_ms: int) -> int | str | None:
    """``expires_days`` from now as the API's ``expires_at`` (Unix ms). Text that is not a number
    goes through as typed, for the API to refuse."""
    raw = form.get("expires_days")
    try:
        days = float(raw)
    except ValueError:
        return raw
    if not 0 < days <= 36_500:
        form.error("expires_days", "must be a number of days between 0 and 36500")
        return None
    return now_ms + int(days * DAY_MS)


def day_ms(form: Form, name: str, *, end: bool = False) -> str | None:
    """A YYYY-MM-DD date field as the API's Unix-ms query value (``end``: the day after)."""
    raw = form.get(name)
    if not raw:
        return None
    try:
        day = dt.datetime.strptime(raw, "%Y-%m-%d").replace(tzinfo=dt.UTC)
    except ValueError:
        form.error(name, "must be a date, YYYY-MM-DD")
        return None
    return str(int(day.timestamp() * 1000) + (DAY_MS if end else 0))


def refused(form: Form, exc: ApiError) -> None:
    form.error(_SHOWN_AT.get(exc.field, exc.field), str(exc))
