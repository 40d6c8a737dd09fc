"""Public task ids: 18 digits, time-ordered, strictly increasing inside a minter."""

from __future__ import annotations

import random

import pytest

from kling_gateway.domain.ids import EPOCH_MS, IdMinter, created_ms, looks_like_public_id

NOW = 1_781_080_000_000  # 2026-06-10
YEAR_MS = 365 * 86_400_000


def minter(seed: int = 1) -> IdMinter:
    return IdMinter(random.Random(seed))


@pytest.mark.parametrize(
    "now_ms", [EPOCH_MS, EPOCH_MS + 1, NOW, NOW + 10 * YEAR_MS, EPOCH_MS + 27 * YEAR_MS]
)
def test_ids_are_18_digits(now_ms: int) -> None:
    ids = [minter().mint(now_ms) for _ in range(3)]
    for public_id in ids:
        assert len(public_id) == 18 and public_id.isdigit() and public_id[0] != "0"
        assert looks_like_public_id(public_id)


@pytest.mark.parametrize("now_ms", [EPOCH_MS, NOW, NOW + 123_456, EPOCH_MS + 27 * YEAR_MS])
@pytest.mark.parametrize("seed", [0, 1, 2, 99])
def test_created_ms_round_trip(now_ms: int, seed: int) -> None:
    assert created_ms(minter(seed).mint(now_ms)) == now_ms


@pytest.mark.parametrize(
    "times",
    [
        [NOW] * 50,  # same millisecond
        [NOW, NOW - 1, NOW - 1000, NOW - 5 * 60_000],  # clock steps back
        [NOW, NOW + 1, NOW, NOW + 1, NOW - 1],
        [NOW + i for i in range(100)],
    ],
)
def test_strictly_increasing(times: list[int]) -> None:
    m = minter()
    ids = [m.mint(t) for t in times]
    as_int = [int(i) for i in ids]
    assert as_int == sorted(set(as_int))
    assert ids == sorted(ids)  # same length, so string order is numeric order


def test_clock_step_back_keeps_the_latest_time() -> None:
    m = minter()
    first = m.mint(NOW)
    back = m.mint(NOW - 60_000)
    assert int(back) == int(first) + 1
    assert created_ms(back) == NOW


def test_time_order_across_minters() -> None:
    earlier = minter(1).mint(NOW)
    later = minter(2).mint(NOW + 1)
    assert earlier < later


def test_many_ids_unique() -> None:
    m = IdMinter()
    ids = [m.mint(NOW + i // 1000) for i in range(20_000)]
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 18 for i in ids)


@pytest.mark.parametrize("seed", range(5))
def test_same_ms_ids_keep_their_millisecond(seed: int) -> None:
    m = minter(seed)
    ids = [m.mint(NOW) for _ in range(1000)]
    assert {created_ms(i) for i in ids} == {NOW}
    assert len(set(ids)) == 1000


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("871234567890123456", True),
        ("000000000000000000", True),
        ("87123456789012345", False),
        ("8712345678901234567", False),
        ("87123456789012345a", False),
        (" 87123456789012345", False),
        ("-87123456789012345", False),
        ("", False),
        ("gw-20260610-0001", False),
    ],
)
def test_looks_like_public_id(value: str, ok: bool) -> None:
    assert looks_like_public_id(value) is ok


@pytest.mark.parametrize("value", ["²" * 18, "٨" * 18, "８" * 18])
def test_looks_like_public_id_rejects_non_ascii_digits(value: str) -> None:
    assert not looks_like_public_id(value)
