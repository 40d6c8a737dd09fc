"""Selection rules for several upstream accounts, as tables (refusals: test_refusals.py)."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

from kling_gateway.domain.routing import choose, failover_order


@dataclass(frozen=True)
class Acc:
    name: str
    priority: int = 0
    weight: int = 1


def _name(acc: Acc | None) -> str:
    assert acc is not None
    return acc.name


def test_no_candidate() -> None:
    assert choose([], random.Random(1)) is None
    assert failover_order([], random.Random(1)) == []


def test_top_tier_only() -> None:
    accs = [Acc("low", 0, 100), Acc("high", 2, 1), Acc("mid", 1, 100)]
    rng = random.Random(1)
    assert {_name(choose(accs, rng)) for _ in range(200)} == {"high"}


def test_weights_inside_a_tier() -> None:
    accs = [Acc("a", 0, 1), Acc("b", 0, 3), Acc("other", -1, 1000)]
    rng = random.Random(7)
    counts = Counter(_name(choose(accs, rng)) for _ in range(8000))
    assert set(counts) == {"a", "b"}
    assert 0.72 < counts["b"] / 8000 < 0.78


def test_zero_weight_is_drained_but_still_served_alone() -> None:
    rng = random.Random(3)
    assert {_name(choose([Acc("a", 0, 0), Acc("b", 0, 1)], rng)) for _ in range(100)} == {"b"}
    assert choose([Acc("a", 0, 0)], rng) == Acc("a", 0, 0)
    assert {_name(choose([Acc("a", 0, 0), Acc("b", 0, 0)], rng)) for _ in range(100)} == {"a", "b"}


def test_failover_order_walks_tiers_then_weights_without_repeats() -> None:
    accs = [Acc("a", 1, 1), Acc("b", 1, 9), Acc("c", 0, 1), Acc("d", 5, 1)]
    rng = random.Random(11)
    firsts: Counter[str] = Counter()
    for _ in range(2000):
        order = failover_order(accs, rng)
        assert order[0].name == "d" and order[-1].name == "c"
        assert sorted(a.name for a in order) == ["a", "b", "c", "d"]
        firsts[order[1].name] += 1
    assert 0.85 < firsts["b"] / 2000 < 0.95
