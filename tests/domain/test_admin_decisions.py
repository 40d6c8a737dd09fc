"""Tables for the admin API's decisions: which limit applies, when a spend cap refuses, IP
allow-lists, task filters, percentiles and success rates."""

from __future__ import annotations

import pytest

from kling_gateway.domain.ipallow import ip_allowed, parse_networks
from kling_gateway.domain.overrides import (
    DAY_MS,
    Defaults,
    Overrides,
    day_start_ms,
    effective,
    parse_limits,
    spend_refusal,
)
from kling_gateway.domain.task_filter import parse_filter, percentile, success_rate

D = Defaults(user_max_in_flight=10, key_max_in_flight=4, rate_per_second=2.0, rate_burst=20)


@pytest.mark.parametrize(
    ("user", "key", "expected"),
    [
        (None, None, (10, 4, 2.0, 20, None, None)),
        (Overrides(max_in_flight=3), None, (3, 4, 2.0, 20, None, None)),
        (None, Overrides(max_in_flight=9), (10, 9, 2.0, 20, None, None)),
        (Overrides(rate_per_second=5, rate_burst=2), None, (10, 4, 5, 2, None, None)),
        (Overrides(rate_per_second=5), Overrides(rate_per_second=1), (10, 4, 1, 20, None, None)),
        (Overrides(daily_spend_micro=7), Overrides(daily_spend_micro=3), (10, 4, 2.0, 20, 7, 3)),
    ],
)
def test_key_then_user_then_default(
    user: Overrides, key: Overrides, expected: tuple[object, ...]
) -> None:
    e = effective(D, user, key)
    got = (
        e.user_max_in_flight,
        e.key_max_in_flight,
        e.rate_per_second,
        e.rate_burst,
        e.user_daily_spend_micro,
        e.key_daily_spend_micro,
    )
    assert got == expected


@pytest.mark.parametrize(
    ("user_cap", "key_cap", "spent_user", "spent_key", "refused"),
    [
        (None, None, 10**9, 10**9, None),
        (100, None, 99, 0, None),
        (100, None, 100, 0, "Account"),
        (None, 50, 0, 50, "API key"),
        (None, 0, 0, 0, "API key"),
        (100, 50, 200, 200, "Account"),
    ],
)
def test_spend_cap_refuses_once_reached(
    user_cap: int | None, key_cap: int | None, spent_user: int, spent_key: int, refused: str | None
) -> None:
    lim = effective(D, Overrides(daily_spend_micro=user_cap), Overrides(daily_spend_micro=key_cap))
    why = spend_refusal(lim, spent_user, spent_key)
    assert (why is None) if refused is None else (why is not None and why.startswith(refused))


def test_days_start_at_utc_midnight() -> None:
    assert day_start_ms(DAY_MS * 3 + 5) == DAY_MS * 3 and day_start_ms(DAY_MS * 3) == DAY_MS * 3


@pytest.mark.parametrize(
    ("body", "values_or_field"),
    [
        ({"max_in_flight": 2, "rate_burst": None}, {"max_in_flight": 2, "rate_burst": None}),
        ({"rate_per_second": "0.50"}, {"rate_per_second": "0.5"}),
        ({"daily_spend": "1.5"}, {"daily_spend_micro": 1_500_000}),
        ({"daily_spend": None}, {"daily_spend_micro": None}),
        ({"max_in_flight": 0}, "max_in_flight"),
        ({"max_in_flight": True}, "max_in_flight"),
        ({"rate_burst": 1.5}, "rate_burst"),
        ({"rate_per_second": 0}, "rate_per_second"),
        ({"rate_per_second": "fast"}, "rate_per_second"),
        ({"daily_spend": "-1"}, "daily_spend"),
        ({"daily_spend": [1]}, "daily_spend"),
    ],
)
def test_limit_input(body: dict[str, object], values_or_field: object) -> None:
    if isinstance(values_or_field, str):
        with pytest.raises(ValueError, match=f"^{values_or_field}:"):
            parse_limits(body)
    else:
        assert parse_limits(body) == values_or_field


@pytest.mark.parametrize(
    ("address", "cidrs", "allowed"),
    [
        ("10.1.2.3", ("10.0.0.0/8",), True),
        ("11.1.2.3", ("10.0.0.0/8",), False),
        ("::ffff:10.1.2.3", ("10.0.0.0/8",), True),
        ("2001:db8::1", ("2001:db8::/32",), True),
        ("2001:db8::1", ("10.0.0.0/8",), False),
        (None, ("0.0.0.0/0",), False),
        ("not-an-ip", ("0.0.0.0/0",), False),
        ("fe80::1%eth0", ("fe80::/10",), True),
    ],
)
def test_ip_allowed(address: str | None, cidrs: tuple[str, ...], allowed: bool) -> None:
    assert ip_allowed(address, cidrs) is allowed


def test_networks_are_normalised_and_checked() -> None:
    assert parse_networks(["10.1.2.3/8", "127.0.0.1", "127.0.0.1"]) == (
        "10.0.0.0/8",
        "127.0.0.1/32",
    )
    for bad in ([], ["10.0.0.300"], [5], ["x"] * 0):
        with pytest.raises(ValueError, match=r"^allowed_ips:"):
            parse_networks(bad)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"kind": "image2video"}, "kind"),
        ({"status": "done"}, "status"),
        ({"since": "-1"}, "since"),
        ({"page_size": "501"}, "page_size"),
        ({"external_task_id": "x"}, "external_task_id"),
        ({"sort": "id"}, "sort"),
    ],
)
def test_task_filter_refusals_name_the_parameter(query: dict[str, str], field: str) -> None:
    with pytest.raises(ValueError, match=f"^{field}:"):
        parse_filter(query)


def test_task_filter_reads_every_parameter() -> None:
    f = parse_filter(
        {
            "status": "succeed",
            "user": "a",
            "model": "m",
            "kind": "text2video",
            "since": "5",
            "until": "9",
        }
        | {"external_task_id": "e", "page": "2", "page_size": "10"}
    )
    assert (f.status, f.user, f.model, f.since_ms, f.until_ms, f.page, f.page_size) == (
        "succeed",
        "a",
        "m",
        5,
        9,
        2,
        10,
    )


@pytest.mark.parametrize(
    ("values", "p", "expected"),
    [
        ([], 50, None),
        ([7], 99, 7),
        ([1, 2, 3, 4], 50, 2),
        ([1, 2, 3, 4], 90, 4),
        (list(range(1, 101)), 99, 99),
    ],
)
def test_nearest_rank_percentile(values: list[int], p: float, expected: int | None) -> None:
    assert percentile(values, p) == expected


def test_success_rate_counts_finished_tasks_only() -> None:
    assert success_rate({}) is None and success_rate({"processing": 3}) is None
    assert success_rate({"succeed": 3, "failed": 1, "processing": 9}) == 0.75
    assert success_rate({"succeed": 1, "rejected": 1}) == 0.5
