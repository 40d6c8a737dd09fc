"""Body shape limits: nesting depth (400/1200 at any depth) and NUL (400/1201, naming the field)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from kling_gateway.domain.shape import MAX_CONTAINERS, MAX_DEPTH, check_body_shape, storable
from kling_gateway.errors import BadRequest, InvalidParameter
from tests.domain.test_request import body, shots, v3_custom, validate


def nest(depth: int, leaf: Any = 1, *, kind: str = "list") -> Any:
    """``leaf`` wrapped in ``depth`` containers (alternating objects and arrays for "mixed")."""
    value = leaf
    for level in range(depth):
        wrap_list = kind == "list" or (kind == "mixed" and level % 2 == 0)
        value = [value] if wrap_list else {"k": value}
    return value


def V3(**fields: Any) -> dict[str, Any]:
    return body("kling-v3", sound="on", **fields)


# Each builder puts a value where a body can hold one; the body adds its own levels.
PLACES: dict[str, Any] = {
    "unknown field": lambda v: body(extra=v),
    "multi_prompt shot": lambda v: v3_custom("5", [{**shots("5")[0], "extra": v}]),
    "voice_list item": lambda v: V3(voice_list=[{"voice_id": "a", "v": v}]),
    "top level array": lambda v: v,
}


@pytest.mark.parametrize("place", sorted(PLACES))
@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 254, 300, 1_000, 1_023])
def test_deep_bodies_are_a_bad_request_at_any_depth(place: str, depth: int) -> None:
    data = PLACES[place](nest(depth))
    with pytest.raises(BadRequest) as info:
        check_body_shape(data)
    assert info.value.code == 1200 and info.value.http_status == 400
    assert f"nests deeper than {MAX_DEPTH} levels" in info.value.message


@pytest.mark.parametrize("depth", [1_000, 1_023])
def test_the_parser_limit_is_judged_without_recursion(depth: int) -> None:
    data = orjson.loads(b"[" * depth + b"]" * depth)
    with pytest.raises(BadRequest):
        check_body_shape(data)
    with pytest.raises(BadRequest):  # through the validator the create and the quote both call
        validate(body(extra=data))


def test_depth_names_where_the_limit_was_passed() -> None:
    with pytest.raises(BadRequest) as info:
        check_body_shape({"multi_prompt": [{"extra": nest(MAX_DEPTH, kind="mixed")}]})
    assert "(at multi_prompt[0].extra.k[0].k[0]." in info.value.message


@pytest.mark.parametrize("kind", ["list", "mixed"])
def test_bodies_up_to_the_limit_pass(kind: str) -> None:
    check_body_shape(nest(MAX_DEPTH, kind=kind))
    validate(body(extra=nest(MAX_DEPTH - 1, kind=kind)))


NUL_CASES: dict[str, tuple[Any, str]] = {
    "prompt": (body(prompt="a\x00b"), "prompt: must not contain NUL"),
    "negative_prompt": (body(negative_prompt="\x00"), "negative_prompt: must not contain NUL"),
    "model_name": (body(model_name="kling-v1\x00"), "model_name: must not contain NUL"),
    "external_task_id": (body(external_task_id="id\x00"), "external_task_id: must not contain NUL"),
    "callback_url": (
        body(callback_url="http://127.0.0.1/\x00"),
        "callback_url: must not contain NUL",
    ),
    "shot prompt": (
        v3_custom("5", shots("5", prompt="s\x00")),
        "multi_prompt[0].prompt: must not contain NUL",
    ),
    "voice id": (
        body("kling-v3", sound="on", voice_list=[{"voice_id": "a\x00"}]),
        "voice_list[0].voice_id: must not contain NUL",
    ),
    "unknown field": (body(extra={"deep": ["ok", "\x00"]}), "extra.deep[1]: must not contain NUL"),
    "field name": (body(**{"ex\x00tra": 1}), "ex\\0tra: field names must not contain NUL"),
}


@pytest.mark.parametrize("case", sorted(NUL_CASES))
def test_nul_anywhere_is_an_invalid_parameter_named_by_field(case: str) -> None:
    data, expected = NUL_CASES[case]
    with pytest.raises(InvalidParameter) as info:
        check_body_shape(data)
    assert info.value.code == 1201 and info.value.message.startswith(expected)


def test_nul_is_refused_by_the_validator_before_the_field_rules() -> None:
    with pytest.raises(InvalidParameter, match=r"^external_task_id: must not contain NUL"):
        validate(body(external_task_id="\x00"))


STORABLE = [("123", True), ("", True), ("é✓", True), ("1\x002", False)]


@pytest.mark.parametrize(("text", "ok"), STORABLE)
def test_storable(text: str, ok: bool) -> None:
    assert storable(text) is ok


@pytest.mark.parametrize(
    "data",
    [
        {"x": [{}] * (MAX_CONTAINERS)},
        {"x": [[1]] * (MAX_CONTAINERS + 5)},
        [[] for _ in range(300_000)],
    ],
)
def test_more_containers_than_the_limit_is_a_bad_request(data: Any) -> None:
    with pytest.raises(BadRequest, match=f"holds more than {MAX_CONTAINERS} objects and arrays"):
        check_body_shape(data)


def test_large_flat_arrays_are_judged_member_by_member() -> None:
    check_body_shape({"x": [1, 2.5, True, None] * 50_000, "y": ["ab"] * 50_000})
    check_body_shape({"x": [{}] * (MAX_CONTAINERS - 2)})  # the top object and "x" count too
    for data, field in [
        ({"x": [1] * 50 + ["\x00"]}, "x[50]"),
        ({"x": ["a"] * 50 + ["b\x00"]}, "x[50]"),
        ({f"k{i}": i for i in range(50)} | {"k\x00": 1}, "k\\0"),
        ({f"k{i}": "v" for i in range(50)} | {"z": "\x00"}, "z"),
    ]:
        with pytest.raises(InvalidParameter) as info:
            check_body_shape(data)
        assert info.value.message.startswith(f"{field}: "), info.value.message
