"""Per-user and per-key limits: which value applies to a create; when a daily spend cap refuses it.

The global ``KGW_`` limits are defaults; an operator may override them per user and per key
(migration 0009). Precedence, per limit: the key's own value, else (where the limit makes sense for
a user) the user's, else the global default. The request rate is a bucket per key, so a user's rate
is the default of each of the user's keys, not a bucket they share. A spend cap has no global
default: it is off unless set.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from .pricing import from_micro, parse_amount, to_micro

DAY_MS = 86_400_000
LIMIT_FIELDS = ("max_in_flight", "rate_per_second", "rate_burst", "daily_spend")


@dataclass(frozen=True, slots=True)
class Overrides:
    """One user's or one key's own limits; None = the default."""

    max_in_flight: int | None = None
    rate_per_second: float | None = None
    rate_burst: int | None = None
    daily_spend_micro: int | None = None

    @property
    def empty(self) -> bool:
        return self == _NONE


_NONE = Overrides()


@dataclass(frozen=True, slots=True)
class Defaults:
    """The global limits (``KGW_USER_MAX_IN_FLIGHT``, ``KGW_KEY_MAX_IN_FLIGHT``,
    ``KGW_KEY_RATE_PER_SECOND``, ``KGW_KEY_RATE_BURST``)."""

    user_max_in_flight: int | None = None
    key_max_in_flight: int | None = None
    rate_per_second: float | None = None
    rate_burst: int = 20


@dataclass(frozen=True, slots=True)
class Effective:
    user_max_in_flight: int | None
    key_max_in_flight: int | None
    rate_per_second: float | None
    rate_burst: int
    user_daily_spend_micro: int | None
    key_daily_spend_micro: int | None

    @property
    def spend_capped(self) -> bool:
        return self.user_daily_spend_micro is not None or self.key_daily_spend_micro is not None


def _first(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)


def effective(defaults: Defaults, user: Overrides | None, key: Overrides | None) -> Effective:
    u, k = user or _NONE, key or _NONE
    return Effective(
        user_max_in_flight=_first(u.max_in_flight, defaults.user_max_in_flight),
        key_max_in_flight=_first(k.max_in_flight, defaults.key_max_in_flight),
        rate_per_second=_first(k.rate_per_second, u.rate_per_second, defaults.rate_per_second),
        rate_burst=_first(k.rate_burst, u.rate_burst, defaults.rate_burst),
        user_daily_spend_micro=u.daily_spend_micro,
        key_daily_spend_micro=k.daily_spend_micro,
    )


def day_start_ms(now_ms: int) -> int:
    """Midnight UTC of ``now_ms``'s day: spend caps reset then, like the usage report's days."""
    return now_ms - now_ms % DAY_MS


def spend_refusal(limits: Effective, spent_user: int, spent_key: int) -> str | None:
    """Why a create is refused by a daily cap, or None. A create is refused once the day's spend has
    reached the cap; the one that crosses it is admitted (its price is only known after
    admission)."""
    cap = limits.user_daily_spend_micro
    if cap is not None and spent_user >= cap:
        return (
            f"Account daily spend cap reached: {from_micro(spent_user)} "
            f"of {from_micro(cap)} credits today"
        )
    cap = limits.key_daily_spend_micro
    if cap is not None and spent_key >= cap:
        return (
            f"API key daily spend cap reached: {from_micro(spent_key)} "
            f"of {from_micro(cap)} credits today"
        )
    return None


# --------------------------------------------------------------------------------- operator input
def parse_limits(body: dict[str, Any]) -> dict[str, Any]:
    """The limit fields present in ``body``, validated, as column values (``daily_spend`` in credits
    → ``daily_spend_micro``); ``null`` clears an override. ValueError names the field."""
    out: dict[str, Any] = {}
    for name in LIMIT_FIELDS:
        if name not in body:
            continue
        value = body[name]
        if name == "daily_spend":
            out["daily_spend_micro"] = None if value is None else _credits(name, value)
        elif name == "rate_per_second":
            out[name] = None if value is None else _rate(value)
        else:
            out[name] = None if value is None else _positive_int(name, value)
    return out


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1_000_000:
        raise ValueError(f"{name}: must be an integer from 1 to 1000000, or null for the default")
    return value


def _rate(value: Any) -> str:
    try:
        rate = Decimal(str(value)) if isinstance(value, int | float | str) else None
    except InvalidOperation:
        rate = None
    if isinstance(value, bool) or rate is None or not rate.is_finite() or not 0 < rate <= 100_000:
        raise ValueError("rate_per_second: must be a number above 0 (at most 100000), or null")
    return str(rate.normalize())


def _credits(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{name}: must be a number of credits, or null for no cap")
    try:
        return to_micro(parse_amount(str(value), name))
    except Exception as exc:  # ConfigError from parse_amount: the same message, as a field error
        raise ValueError(str(exc)) from None


def overrides_from_row(row: Any, prefix: str = "") -> Overrides | None:
    """The overrides in a row's limit columns (``prefix``: labelled joins); None if all are NULL."""
    m = row._mapping
    rate = m[f"{prefix}rate_per_second"]
    found = Overrides(
        max_in_flight=m[f"{prefix}max_in_flight"],
        rate_per_second=float(rate) if rate is not None else None,
        rate_burst=m[f"{prefix}rate_burst"],
        daily_spend_micro=m[f"{prefix}daily_spend_micro"],
    )
    return None if found.empty else found


def overrides_json(o: Overrides | None) -> dict[str, Any]:
    o = o or _NONE
    return {
        "max_in_flight": o.max_in_flight,
        "rate_per_second": None if o.rate_per_second is None else f"{o.rate_per_second:g}",
        "rate_burst": o.rate_burst,
        "daily_spend": None if o.daily_spend_micro is None else from_micro(o.daily_spend_micro),
    }


def utc_day(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d")
