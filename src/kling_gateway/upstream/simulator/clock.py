"""A hand-driven clock for tests and scripted benchmarks; pass
``clock=ManualClock()`` to the app."""

from __future__ import annotations

import time


class ManualClock:
    def __init__(self, start: float | None = None) -> None:
        # Defaults to real "now" so timestamps (JWT exp/nbf, created_at) look
        # plausible to real code.
        self.now = time.time() if start is None else start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now
