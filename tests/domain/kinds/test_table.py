"""Kind capability tables: one data format for defaults, overrides and dumps, checked at start."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from kling_gateway.domain.kinds.table import (
    Gate,
    KindTable,
    count,
    durations,
    flag,
    gate,
    modes,
    names,
    opt_count,
)
from kling_gateway.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Row:
    name: str
    modes: frozenset[str] | None
    durations: frozenset[int] | None
    sound: bool
    tail: Gate | None
    elements: int
    images: int | None
    scenes: frozenset[str]


SCHEMA = {
    "modes": modes(),
    "durations": durations(),
    "sound": flag(),
    "tail": gate(),
    "elements": count(),
    "images": opt_count(4),
    "scenes": names(),
}
DATA: dict[str, dict[str, object]] = {
    "m1": {"modes": ["std", "pro"], "durations": [5, 10], "tail": {"modes": ["pro"]}},
    "m2": {"modes": None, "sound": True, "tail": True, "elements": 3, "scenes": ["a"]},
}


def table(data: dict[str, Any] | None = None) -> KindTable[Row]:
    return KindTable("test", Row, SCHEMA, DATA if data is None else data)


def test_rows_parse_with_conservative_defaults() -> None:
    m1, m2 = table()["m1"], table()["m2"]
    assert m1 == Row(
        "m1", frozenset({"std", "pro"}), frozenset({5, 10}), False, Gate(frozenset({"pro"})), 0, 4,
        frozenset(),
    )  # fmt: skip
    assert m2.modes is None
    assert m2.durations == frozenset({5})
    assert m2.tail == Gate()
    assert table().names() == ["m1", "m2"]


def test_dump_reloads_unchanged() -> None:
    dumped = table().to_dict()
    assert dumped["m1"]["tail"] == {"modes": ["pro"]}
    assert dumped["m2"]["tail"] is True
    assert dumped["m1"]["sound"] is False
    assert table(dumped).to_dict() == dumped
    assert dict(table(dumped)) == dict(table())


def test_override_replaces_only_the_fields_given_and_adds_models() -> None:
    changed = table().with_overrides({"m1": {"sound": True}, "new": {}})
    assert changed["m1"].sound is True
    assert changed["m1"].durations == frozenset({5, 10})
    assert changed["new"].modes == frozenset({"std"})
    assert changed["new"].tail is None
    assert "new" not in table()  # the original is unchanged


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"m1": {"colour": 1}}, "X: test: model 'm1': unknown capability field(s) colour"),
        ({"m1": {"sound": "yes"}}, "X: model 'm1': sound must be true or false, got 'yes'"),
        ({"m1": {"modes": "std"}}, "X: model 'm1': modes must be a list, got 'std'"),
        ({"m1": {"modes": ["ultra"]}}, "X: model 'm1': modes must be a non-empty list of std"),
        ({"m1": {"modes": []}}, "X: model 'm1': modes must be a non-empty list"),
        ({"m1": {"durations": [0]}}, "X: model 'm1': durations must be a non-empty list"),
        ({"m1": {"durations": [True]}}, "X: model 'm1': durations must be a non-empty list"),
        ({"m1": {"elements": -1}}, "X: model 'm1': elements must be a whole number >= 0"),
        ({"m1": {"images": 1.5}}, "X: model 'm1': images must be a whole number >= 0"),
        ({"m1": {"tail": "pro"}}, "X: model 'm1': tail must be true, false or"),
        ({"m1": {"tail": {"mode": ["pro"]}}}, "X: model 'm1': tail must be true, false or"),
        ({"m1": {"tail": {"modes": ["4K"]}}}, "X: model 'm1': tail.modes must be a non-empty"),
        ({"m1": {"scenes": [""]}}, "X: model 'm1': scenes must be a list of non-empty strings"),
        ({"m1": 5}, "X: test: model 'm1' must map fields"),
        ({"": {}}, "X: test: model name must be a non-empty string"),
    ],
)
def test_bad_overrides_stop_start_up_naming_the_source(
    override: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        table().with_overrides(override, source="X")
    assert str(info.value).startswith(message)


@pytest.mark.parametrize(
    ("gate_value", "mode", "seconds", "allowed"),
    [
        (Gate(), "std", 5, True),
        (Gate(), None, None, True),
        (Gate(frozenset({"pro"})), "std", 5, False),
        (Gate(frozenset({"pro"})), "pro", 10, True),
        (Gate(None, frozenset({5})), "pro", 10, False),
        (Gate(frozenset({"std", "pro"}), frozenset({5})), "std", 5, True),
    ],
)
def test_gate_allows(
    gate_value: Gate, mode: str | None, seconds: int | None, allowed: bool
) -> None:
    assert gate_value.allows(mode, seconds) is allowed


def test_gate_describe() -> None:
    both = Gate(frozenset({"pro", "std"}), frozenset({10, 5}))
    assert both.describe() == "mode std or pro, duration 5 or 10"
    assert Gate().describe() == "any mode"
