"""Prices and quotes, exact: decimals in, integer micro-credits out (1 credit = 1,000,000 micro).

A task's price is fixed at submit as a per-second rate (operator price × the user's multiplier,
rounded once to a micro-credit); the reserve is that rate × the requested seconds and the final
charge is the same rate × the billed seconds, never more than the reserve. Integer arithmetic from
there on, so reserve = charge + release holds to the last micro-credit.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Literal

from ..errors import ConfigError, InvalidParameter
from .models import ModelCapabilities, sorted_modes
from .request import DEFAULT_MODE

MICRO = 1_000_000
ANY_MODE = "*"
BillingPolicy = Literal["requested", "actual"]


def parse_amount(text: str | int | Decimal, what: str = "amount") -> Decimal:
    """An exact, non-negative decimal with at most 6 places (micro-credits)."""
    try:
        value = Decimal(str(text).strip())
    except InvalidOperation:
        raise ConfigError(f"{what}: {text!r} is not a decimal number") from None
    if not value.is_finite() or value < 0:
        raise ConfigError(f"{what}: {text!r} must be a finite number ≥ 0")
    if value != value.quantize(Decimal("0.000001")):
        raise ConfigError(f"{what}: {text!r} has more than 6 decimal places")
    return value


def to_micro(value: Decimal) -> int:
    return int((value * MICRO).to_integral_value(rounding=ROUND_HALF_UP))


def from_micro(micro: int) -> str:
    """Micro-credits as a plain decimal string without trailing zeros (``2500000`` → ``"2.5"``)."""
    text = format(Decimal(micro) / MICRO, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


@dataclass(frozen=True, slots=True)
class PriceKey:
    public_model: str
    mode: str
    sound: bool
    voice: bool


class PriceTable:
    """Credits per second by (public model, mode, sound, voice); ``mode="*"`` matches any mode."""

    __slots__ = ("_prices",)

    def __init__(self, prices: Mapping[PriceKey, Decimal] | None = None) -> None:
        self._prices = dict(prices or {})

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[str, str, bool, bool, str]]) -> PriceTable:
        return cls(
            {PriceKey(m, mode, s, v): parse_amount(p, f"price of {m}") for m, mode, s, v, p in rows}
        )

    def items(self) -> list[tuple[PriceKey, Decimal]]:
        return sorted(
            self._prices.items(),
            key=lambda kv: (kv[0].public_model, kv[0].mode, kv[0].sound, kv[0].voice),
        )

    def per_second(self, public_model: str, mode: str, sound: bool, voice: bool) -> Decimal | None:
        for key in (
            PriceKey(public_model, mode, sound, voice),
            PriceKey(public_model, ANY_MODE, sound, voice),
        ):
            if key in self._prices:
                return self._prices[key]
        return None


@dataclass(frozen=True, slots=True)
class Quote:
    per_second_micro: int
    seconds: int
    reserve_micro: int

    @property
    def reserve(self) -> str:
        return from_micro(self.reserve_micro)


def quote(
    table: PriceTable,
    *,
    public_model: str,
    mode: str,
    sound: bool,
    voice: bool,
    seconds: int,
    multiplier: Decimal = Decimal(1),
    priced_as: Sequence[str] = (),
) -> Quote:
    """``priced_as``: the names ``public_model`` routes through to its upstream model, in order. An
    alias without a price of its own costs what the first priced name on its route costs."""
    price = next(
        (
            found
            for name in (public_model, *priced_as)
            if (found := table.per_second(name, mode, sound, voice)) is not None
        ),
        None,
    )
    if price is None:
        extras = ", ".join(
            filter(None, ["sound on" if sound else "", "voice control" if voice else ""])
        )
        routed = f" (nor for {', '.join(map(repr, priced_as))})" if priced_as else ""
        raise InvalidParameter(
            f"model_name: no price is set for {public_model!r}{routed} in mode {mode!r}"
            + (f" with {extras}" if extras else "")
            + "; the operator must price it (or mark it free) before it can be used"
        )
    rate = to_micro(price * multiplier)
    return Quote(per_second_micro=rate, seconds=seconds, reserve_micro=rate * seconds)


def price_conflict(caps: ModelCapabilities, mode: str, sound: bool, voice: bool) -> str | None:
    """Why no task of a model with ``caps`` could ever be billed at this price row (the rule it
    breaks, in the capability table's words), or None. A price no request can reach only misleads
    the operator reading the list."""
    if mode != ANY_MODE:
        if caps.modes is None and mode != DEFAULT_MODE:
            return (
                f"{caps.name} has no mode choice (modes: null), its tasks are priced as mode "
                f"{DEFAULT_MODE!r}: use '*' or {DEFAULT_MODE!r}"
            )
        if caps.modes is not None and mode not in caps.modes:
            offered = ", ".join(sorted_modes(caps.modes))
            return f"mode {mode!r} is not among the modes of {caps.name} ({offered})"
    if sound and not caps.sound:
        return f"{caps.name} has no sound (sound: false)"
    if voice and not caps.voice_control:
        return f"{caps.name} has no voice control (voice_control: false)"
    if sound and caps.sound_requires_pro and mode not in (ANY_MODE, "pro"):
        return f"sound on {caps.name} needs mode 'pro' (sound_requires_pro: true)"
    return None


def charge_view(reserved_micro: int, charged_micro: int | None) -> dict[str, str | None]:
    """What a task cost its client, in credits: the reserve taken at submit and, once the task
    ended, the part settled and the part refunded (they add up to the reserve); None while open."""
    if charged_micro is None:
        return {"reserved": from_micro(reserved_micro), "settled": None, "refunded": None}
    return {
        "reserved": from_micro(reserved_micro),
        "settled": from_micro(charged_micro),
        "refunded": from_micro(reserved_micro - charged_micro),
    }


def billed_seconds(requested: int, videos: list[dict[str, object]], policy: BillingPolicy) -> int:
    """``requested``: what was asked for. ``actual``: the longest returned video, rounded up to a
    whole second, but never more than requested (the reserve was computed for that)."""
    if policy == "requested":
        return requested
    longest = 0.0
    for video in videos:
        try:
            longest = max(longest, float(str(video.get("duration", "0"))))
        except ValueError:
            continue
    if longest <= 0:
        return requested
    return min(requested, math.ceil(longest))
