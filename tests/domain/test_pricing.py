"""Exact prices: decimals in, integer micro-credits out; the charge never exceeds the reserve."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from kling_gateway.domain.models import DEFAULT_CAPABILITIES
from kling_gateway.domain.pricing import (
    PriceKey,
    PriceTable,
    billed_seconds,
    charge_view,
    from_micro,
    parse_amount,
    price_conflict,
    quote,
    to_micro,
)
from kling_gateway.errors import ConfigError, InvalidParameter

TABLE = PriceTable(
    {
        PriceKey("kling-v3", "std", False, False): Decimal("0.6"),
        PriceKey("kling-v3", "pro", True, True): Decimal("1.4"),
        PriceKey("kling-v2-master", "*", False, False): Decimal("1.0"),
        PriceKey("free-model", "std", False, False): Decimal("0"),
    }
)


@pytest.mark.parametrize(
    ("text", "micro"),
    [("0", 0), ("0.000001", 1), ("2.5", 2_500_000), ("1000", 1_000_000_000), ("0.1", 100_000)],
)
def test_amounts_are_exact(text: str, micro: int) -> None:
    assert to_micro(parse_amount(text)) == micro
    assert from_micro(micro) == text


@pytest.mark.parametrize("bad", ["-1", "abc", "0.0000001", "NaN", "Infinity", ""])
def test_bad_amounts_are_refused(bad: str) -> None:
    with pytest.raises(ConfigError):
        parse_amount(bad)


@pytest.mark.parametrize(
    ("model", "mode", "sound", "voice", "seconds", "multiplier", "reserve"),
    [
        ("kling-v3", "std", False, False, 5, "1", 3_000_000),
        ("kling-v3", "std", False, False, 15, "1", 9_000_000),
        ("kling-v3", "pro", True, True, 10, "1", 14_000_000),
        ("kling-v3", "std", False, False, 5, "0.8", 2_400_000),
        ("kling-v2-master", "std", False, False, 10, "1", 10_000_000),  # "*" matches any mode
        ("free-model", "std", False, False, 5, "1", 0),
    ],
)
def test_quotes(
    model: str, mode: str, sound: bool, voice: bool, seconds: int, multiplier: str, reserve: int
) -> None:
    q = quote(
        TABLE,
        public_model=model,
        mode=mode,
        sound=sound,
        voice=voice,
        seconds=seconds,
        multiplier=Decimal(multiplier),
    )
    assert q.reserve_micro == reserve
    assert q.reserve_micro == q.per_second_micro * seconds


@pytest.mark.parametrize(
    ("model", "mode", "sound", "voice"),
    [
        ("kling-v3", "pro", False, False),
        ("kling-v3", "std", True, False),
        ("kling-v9", "std", False, False),
    ],
)
def test_unpriced_combinations_are_refused_naming_the_field(
    model: str, mode: str, sound: bool, voice: bool
) -> None:
    with pytest.raises(InvalidParameter) as info:
        quote(TABLE, public_model=model, mode=mode, sound=sound, voice=voice, seconds=5)
    assert "model_name" in info.value.message and "no price" in info.value.message


@pytest.mark.parametrize(
    ("requested", "durations", "policy", "billed"),
    [
        (5, ["5.1"], "requested", 5),
        (5, ["5.1"], "actual", 5),  # rounded up to 6, capped at the reserve's 5
        (10, ["4.2"], "actual", 5),
        (10, ["4.0"], "actual", 4),
        (10, [], "actual", 10),
        (10, ["junk"], "actual", 10),
        (10, ["3.5", "7.1"], "actual", 8),
    ],
)
def test_billed_seconds(requested: int, durations: list[str], policy: str, billed: int) -> None:
    videos: list[dict[str, object]] = [{"duration": d} for d in durations]
    assert billed_seconds(requested, videos, policy) == billed  # type: ignore[arg-type]


ALIASED = PriceTable(
    {
        PriceKey("kling-v2-5-turbo", "std", False, False): Decimal("0.3"),
        PriceKey("kling-v2-5-turbo", "pro", False, False): Decimal("0.5"),
        PriceKey("my-own", "*", False, False): Decimal("2"),
    }
)


@pytest.mark.parametrize(
    ("model", "priced_as", "mode", "per_second"),
    [
        ("my-fast", ["kling-v2-5-turbo"], "std", 300_000),  # an alias costs what its target costs
        ("my-fast", ["kling-v2-5-turbo"], "pro", 500_000),
        ("my-fast", ["middle", "kling-v2-5-turbo"], "pro", 500_000),  # through a chain of aliases
        ("my-own", ["kling-v2-5-turbo"], "pro", 2_000_000),  # its own price wins, "*" included
        ("kling-v2-5-turbo", [], "std", 300_000),
    ],
)
def test_an_alias_is_priced_as_its_target_unless_priced_itself(
    model: str, priced_as: list[str], mode: str, per_second: int
) -> None:
    q = quote(
        ALIASED,
        public_model=model,
        mode=mode,
        sound=False,
        voice=False,
        seconds=5,
        priced_as=priced_as,
    )
    assert q.per_second_micro == per_second


def test_an_unpriced_alias_names_its_route_in_the_refusal() -> None:
    with pytest.raises(InvalidParameter) as info:
        quote(
            ALIASED,
            public_model="my-fast",
            mode="std",
            sound=True,
            voice=False,
            seconds=5,
            priced_as=["kling-v2-5-turbo"],
        )
    expected = "no price is set for 'my-fast' (nor for 'kling-v2-5-turbo') in mode 'std' with sound"
    assert info.value.message.startswith(f"model_name: {expected}")


@pytest.mark.parametrize(
    ("model", "mode", "sound", "voice", "rule"),
    [
        ("kling-v3", "std", False, False, None),
        ("kling-v3", "*", True, True, None),
        ("kling-v3", "4k", False, False, "mode '4k' is not among the modes of kling-v3 (std, pro)"),
        ("kling-v3", "fast", False, False, "mode 'fast' is not among the modes of kling-v3"),
        ("kling-v2-master", "*", False, False, None),
        ("kling-v2-master", "std", False, False, None),
        ("kling-v2-master", "pro", False, False, "kling-v2-master has no mode choice"),
        ("kling-v1", "std", True, False, "kling-v1 has no sound (sound: false)"),
        ("kling-v1", "pro", True, True, "kling-v1 has no sound (sound: false)"),
        ("kling-v2-6", "pro", True, False, None),
        ("kling-v2-6", "pro", True, True, None),
        ("kling-v2-6", "std", True, False, "sound on kling-v2-6 needs mode 'pro' (sound_requires"),
        ("kling-v2-6", "std", True, True, "sound on kling-v2-6 needs mode 'pro'"),
    ],
)
def test_price_rows_no_task_can_reach_are_named_by_the_rule(
    model: str, mode: str, sound: bool, voice: bool, rule: str | None
) -> None:
    found = price_conflict(DEFAULT_CAPABILITIES[model], mode, sound, voice)
    assert found == rule if rule is None else (found or "").startswith(rule)


def test_voice_control_off_in_the_table_refuses_a_voice_price() -> None:
    caps = DEFAULT_CAPABILITIES.with_overrides({"kling-v3": {"voice_control": False}})["kling-v3"]
    rule = "kling-v3 has no voice control (voice_control: false)"
    assert price_conflict(caps, "pro", True, True) == rule
    assert price_conflict(caps, "pro", True, False) is None


@pytest.mark.parametrize(
    ("reserved", "charged", "view"),
    [
        (0, None, {"reserved": "0", "settled": None, "refunded": None}),
        (5_000_000, None, {"reserved": "5", "settled": None, "refunded": None}),
        (5_000_000, 4_000_000, {"reserved": "5", "settled": "4", "refunded": "1"}),
        (5_000_000, 0, {"reserved": "5", "settled": "0", "refunded": "5"}),
        (2_500_000, 2_500_000, {"reserved": "2.5", "settled": "2.5", "refunded": "0"}),
    ],
)
def test_charge_view_in_credits(reserved: int, charged: int | None, view: dict[str, Any]) -> None:
    assert charge_view(reserved, charged) == view
