"""When to look at an unfinished task next. Pure: callers pass the attempt count, no clock is read."""

from __future__ import annotations


def next_poll_delay(attempts: int, *, first: float, cap: float, factor: float = 1.5) -> float:
    """Seconds until the next upstream read: ``first``, then growing by ``factor`` up to ``cap``.

    The first look comes early because short renders finish within seconds on the simulator and Kling's
    turbo models; the cap keeps long renders from being read more than once per ``cap`` seconds.
    """
    if attempts <= 0:
        return first
    # The exponent is bounded: a task can be read for days, and 1.5**1751 overflows a float.
    return float(min(cap, first * factor ** min(attempts, 256)))
