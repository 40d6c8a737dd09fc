"""Which upstream account a create goes to, and what an upstream refusal means for the next try.

Pure rules, so they are tested as tables: the services layer feeds in the live candidates and the codes.

Selection: the highest priority tier that has a usable account wins; inside a tier an account is drawn
with probability proportional to its weight. ``failover_order`` is the same draw repeated without
replacement, which is the order a create walks when accounts refuse it.

Refusals (kling-api.md §5): only codes that prove Kling made no task may send a create elsewhere. Of
those, the request's own faults (bad parameter, content policy) would fail the same way anywhere and are
the client's answer; the account's faults move it on, and some also bench the account for a while.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from enum import Enum
from typing import Protocol, TypeVar


class Verdict(Enum):
    REJECT = "reject"  # the request itself is refused: answer the client, try nowhere else
    BUSY = "busy"  # 1302/1303: this account × model is full right now; next account, no cooldown
    UNREACHABLE = "unreachable"  # 5001 or no connection: next account, short cooldown
    KEY = "key"  # 1000–1004: this key's credentials fail; cool the key (the account if it has no other)
    ACCOUNT = "account"  # 1100–1103, 1304: the account cannot work (arrears, no permission, IP list)


_BY_CODE: dict[int, Verdict] = {
    **dict.fromkeys(range(1000, 1005), Verdict.KEY),
    **dict.fromkeys(range(1100, 1104), Verdict.ACCOUNT),
    1302: Verdict.BUSY,
    1303: Verdict.BUSY,
    1304: Verdict.ACCOUNT,
    5001: Verdict.UNREACHABLE,
}


def verdict(code: int) -> Verdict:
    """For a refusal already known to prove no task exists (``Outcome.ABSENT``)."""
    return _BY_CODE.get(code, Verdict.REJECT)


def fails_over(code: int) -> bool:
    return verdict(code) is not Verdict.REJECT


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
    if sum(weights) <= 0:  # all weight 0: the operator drained the tier; still serve rather than refuse
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
