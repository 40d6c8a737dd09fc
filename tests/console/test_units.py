"""Pure parts of the console as tables: overview arithmetic and the sign-in throttle."""

from __future__ import annotations

import pytest

from kling_gateway.console.figures import day_labels, percentile, series, success_rate
from kling_gateway.console.throttle import SignInThrottle


@pytest.mark.parametrize(
    "values,p,expected",
    [
        ([], 50, None),
        ([1000], 99, 1.0),
        ([4000, 1000, 3000, 2000], 50, 2.0),
        ([4000, 1000, 3000, 2000], 90, 4.0),
        (list(range(1000, 101_000, 1000)), 99, 99.0),
    ],
)
def test_percentile_is_nearest_rank_in_seconds(
    values: list[int], p: int, expected: float | None
) -> None:
    assert percentile(values, p) == expected


@pytest.mark.parametrize(
    "counts,expected",
    [
        ({}, None),
        ({"processing": 3, "rejected": 2}, None),
        ({"succeed": 3, "failed": 1, "processing": 9}, 0.75),
        ({"failed": 2}, 0.0),
    ],
)
def test_success_rate_counts_finished_tasks_only(
    counts: dict[str, int], expected: float | None
) -> None:
    assert success_rate(counts) == expected


def test_series_fills_missing_days_and_labels_them() -> None:
    assert series({20_000: 4, 20_002: 1, 19_999: 7}, 20_000, 3) == [4, 0, 1]
    assert day_labels(20_000, 2) == ["10-04", "10-05"]  # day 20000 after the epoch is 2024-10-04


@pytest.mark.parametrize(
    "failures,at,blocked",
    [
        ([0, 1, 2, 3], 4, False),  # four failures: still allowed
        ([0, 1, 2, 3, 4], 5, True),  # the fifth inside the minute blocks
        ([0, 1, 2, 3, 4], 60.5, False),  # the first left the window
        ([0, 10, 20, 30, 40], 59, True),
    ],
)
def test_throttle_blocks_after_five_failures_a_minute(
    failures: list[float], at: float, blocked: bool
) -> None:
    throttle = SignInThrottle()
    for t in failures:
        throttle.failed("10.0.0.1", t)
    assert throttle.blocked("10.0.0.1", at) is blocked
    assert throttle.blocked("10.0.0.2", at) is False


def test_throttle_says_when_to_retry_and_bounds_its_memory() -> None:
    throttle = SignInThrottle(limit=1, window=60, max_addresses=2)
    throttle.failed("a", 0)
    assert throttle.retry_after("a", 10) == 51
    throttle.failed("b", 1)
    throttle.failed("c", 2)
    assert not throttle.blocked("a", 3) and throttle.blocked("c", 3)
