"""Public task ids: 18-digit numeric strings, time-ordered, like Kling's own.

Layout: ``10**17 + ((ms - EPOCH_MS) << 20 | low)`` where ``low`` starts at a random
point each millisecond and counts up. Ids sort by creation time (so "newest first" is
``ORDER BY id DESC``), never repeat inside a process, and collide across processes
only by a 1-in-a-million chance per same-millisecond pair, which the primary key
turns into a retry. Stays 18 digits until the year 2052.
"""

from __future__ import annotations

import random

EPOCH_MS = 1_735_689_600_000  # 2025-01-01T00:00:00Z
_BASE = 10**17
_LOW_BITS = 20
_LOW_MASK = (1 << _LOW_BITS) - 1


class IdMinter:
    __slots__ = ("_last", "_rng")

    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng or random.Random()
        self._last = 0

    def mint(self, now_ms: int) -> str:
        candidate = ((now_ms - EPOCH_MS) << _LOW_BITS) | self._rng.getrandbits(_LOW_BITS - 2)
        if candidate <= self._last:  # same ms (or a clock step back): keep counting up
            candidate = self._last + 1
        self._last = candidate
        return str(_BASE + candidate)


def looks_like_public_id(value: str) -> bool:
    return len(value) == 18 and value.isascii() and value.isdigit()


def created_ms(public_id: str) -> int:
    return ((int(public_id) - _BASE) >> _LOW_BITS) + EPOCH_MS
