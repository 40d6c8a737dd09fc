"""next_poll_delay: first look early, then geometric growth up to a cap."""

from __future__ import annotations

import pytest

from kling_gateway.domain.schedule import next_poll_delay


@pytest.mark.parametrize(
    ("attempts", "expected"),
    [
        (-5, 2.0),
        (-1, 2.0),
        (0, 2.0),
        (1, 3.0),
        (2, 4.5),
        (3, 6.75),
        (4, 10.125),
        (5, 15.1875),
        (6, 22.78125),
        (7, 30.0),  # 34.17 capped
        (8, 30.0),
        (50, 30.0),
        (1_000, 30.0),
    ],
)
def test_default_factor(attempts: int, expected: float) -> None:
    assert next_poll_delay(attempts, first=2.0, cap=30.0) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("attempts", "first", "cap", "factor", "expected"),
    [
        (0, 1.0, 10.0, 2.0, 1.0),
        (1, 1.0, 10.0, 2.0, 2.0),
        (3, 1.0, 10.0, 2.0, 8.0),
        (4, 1.0, 10.0, 2.0, 10.0),
        (5, 5.0, 5.0, 1.5, 5.0),
        (3, 2.0, 100.0, 1.0, 2.0),  # factor 1: constant
    ],
)
def test_growth_and_cap(
    attempts: int, first: float, cap: float, factor: float, expected: float
) -> None:
    assert next_poll_delay(attempts, first=first, cap=cap, factor=factor) == pytest.approx(expected)


def test_monotonic_and_bounded() -> None:
    delays = [next_poll_delay(n, first=0.5, cap=45.0) for n in range(40)]
    assert delays == sorted(delays)
    assert max(delays) == 45.0
    assert all(isinstance(d, float) for d in delays)


def test_int_inputs_give_float() -> None:
    assert isinstance(next_poll_delay(3, first=2, cap=30), float)
    assert isinstance(next_poll_delay(0, first=2.0, cap=30), float)


@pytest.mark.parametrize("attempts", [1_751, 10_000])
def test_huge_attempt_counts_stay_at_cap(attempts: int) -> None:
    assert next_poll_delay(attempts, first=2.0, cap=30.0) == 30.0
