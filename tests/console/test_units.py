"""Pure parts of the console as tables: the sign-in throttle."""

from __future__ import annotations

import pytest

from kling_gateway.console.throttle import SignInThrottle


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
