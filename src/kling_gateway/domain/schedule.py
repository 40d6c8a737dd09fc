"""When to look at an unfinished task next. Pure: callers pass the attempt count, no
clock is read."""

from __future__ import annotations

import random


def next_poll_delay(attempts: int, *, first: float, cap: float, factor: float = 1.5) -> float:
    """Seconds until the next upstream read: ``first``, then growing by ``factor`` up to ``cap``.

    The first look comes early because short renders finish within seconds on the
    simulator and Kling's turbo models; the cap keeps long renders from being read
    more than once per ``cap`` seconds.
    """
    if attempts <= 0:
        return first
    # The exponent is bounded: a task can be read for days, and 1.5**1751 overflows a float.
    return float(min(cap, first * factor ** min(attempts, 256)))


def with_jitter(delay: float, jitter: float, rng: random.Random) -> float:
    """Shorten ``delay`` by up to ``jitter`` (a fraction) so tasks created together
    are not read together. Only ever shorter: the configured interval stays a true
    upper bound on how stale a task can get."""
    if jitter <= 0:
        return delay
    return max(0.0, delay * (1.0 - rng.uniform(0.0, jitter)))


def expected_render_seconds(duration: int, mode: str) -> float:
    """When a render is likely done, for the first look: Kling takes minutes, roughly growing with
    the seconds asked for and the mode; the operator scales it with the first-poll setting."""
    factor = {"std": 1.0, "pro": 1.5, "4k": 2.5}.get(mode, 1.0)
    return float(duration) * factor


def first_poll_delay(
    duration: int, mode: str, *, scale: float, floor: float, rng: random.Random, jitter: float
) -> float:
    """``scale`` × expected render time (at least ``floor``), jittered. ``scale`` is
    seconds of wall time per expected second: ~12 for the real Kling API (a 5 s std
    clip ≈ 1 minute), far less for the simulator."""
    return with_jitter(max(floor, scale * expected_render_seconds(duration, mode)), jitter, rng)


def webhook_retry_delay(
    attempt: int, *, rng: random.Random | None = None, base: float = 5.0, cap: float = 3600.0
) -> float:
    """Seconds before retrying a webhook after its ``attempt``-th failed try (1 = the
    first try failed).

    Doubling from ``base`` up to ``cap`` backs off from a receiver that is down without hammering
    it; the "equal jitter" (a uniform draw from the upper half of the step) spreads the retries of
    the many events that failed together during one outage, yet never retries sooner than half the
    step. ``rng`` is passed in so tests are deterministic; without one the delay is the step itself.
    """
    step = float(min(cap, base * 2.0 ** min(max(attempt, 1) - 1, 64)))
    if rng is None:
        return step
    return step / 2 + rng.uniform(0.0, step / 2)
