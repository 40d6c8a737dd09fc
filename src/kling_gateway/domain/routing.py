"""Which upstream account a create goes to, and in which order it walks them when they refuse.

Pure rules, so they are tested as tables: the services layer feeds in the live candidates.

Selection: the highest priority tier that has a usable account wins; inside a tier an account is
drawn with probability proportional to its weight. ``failover_order`` is the same draw repeated
without replacement, which is the order a create walks when accounts refuse it.

What a refusal means for the next try is domain/refusals.py; the walk itself is domain/failover.py.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Protocol, TypeVar


class Weighted(Protocol):
    @property
    def priority(self) -> int: ...

    @property
    def weight(self) -> int: ...


W = TypeVar("W", bound=Weighted)


def choose(candidates: Sequence[W], rng: random.Random) -> W | None:
    """One account from the top priority tier, weighted; ``None`` when there is no candidate."""
    if not candidates:
        return None
    top = max(c.priority for c in candidates)
    tier = [c for c in candidates if c.priority == top]
    if len(tier) == 1:
        return tier[0]
    weights = [max(c.weight, 0) for c in tier]
    # all weight 0: the operator drained the tier; still serve rather than refuse
    if sum(weights) <= 0:
        return rng.choice(tier)
    return rng.choices(tier, weights=weights)[0]


def failover_order(candidates: Sequence[W], rng: random.Random) -> list[W]:
    """Every candidate, tiers in priority order, each tier as weighted draws without replacement."""
    rest = list(candidates)
    out: list[W] = []
    while rest:
        picked = choose(rest, rng)
        assert picked is not None
        out.append(picked)
        rest.remove(picked)
    return out
