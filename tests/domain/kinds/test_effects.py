"""effects validation as a table; the scene lists and the duration rule are operator data."""

from __future__ import annotations

from typing import Any

import pytest

from kling_gateway.domain.kinds.common import Context, KindRequest
from kling_gateway.domain.kinds.effects import DEFAULT_TABLE, EffectsCaps, validate_effects
from kling_gateway.domain.kinds.table import ANY_MODEL, KindTable
from tests.domain.kinds.media import DROP, JPEG, PNG, URL, b64, merge, png, refusal


def effect(scene: str = "bloombloom", **fields: Any) -> dict[str, Any]:
    return merge({"effect_scene": scene, "input": {"image": PNG}}, fields)


def dual(*images: Any, **extra: Any) -> dict[str, Any]:
    return effect("hug_pro", input={"images": list(images), **extra})


def validate(data: Any, table: KindTable[EffectsCaps] = DEFAULT_TABLE) -> KindRequest:
    return validate_effects(data, Context(table[ANY_MODEL]))


ACCEPTED = {
    "single scene": effect(),
    "single scene URL, 10 s": effect(input={"image": URL, "duration": "10"}),
    "dual scene": dual(PNG, JPEG),
    "dual scene 5 s": dual(PNG, URL, duration="5"),
    "unknown input keys forwarded": effect(input={"image": PNG, "model_name": "kling-v1-6"}),
}


@pytest.mark.parametrize("data", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_accepted(data: dict[str, Any]) -> None:
    result = validate(data)
    assert result.kind == "effects"
    assert result.upstream_body["input"] == data["input"]


def test_duration_is_reported_when_given() -> None:
    assert validate(effect(input={"image": PNG, "duration": 10})).duration == 10
    assert validate(effect()).duration is None


REJECTED: dict[str, tuple[Any, str]] = {
    "no scene": (effect(effect_scene=DROP), "effect_scene: required"),
    "scene number": (effect(effect_scene=3), "effect_scene: must be a string (got 3)"),
    "retired scene": (effect("tiger_hug"), "effect_scene: 'tiger_hug' has been retired by Kling"),
    "no input": (effect(input=DROP), "input: required"),
    "input string": (effect(input=PNG), "input: must be an object with the scene's fields"),
    "single without image": (effect(input={}), "input.image: required for scene bloombloom"),
    "single image small": (
        effect(input={"image": b64(png(100, 100))}),
        "input.image: width and height must be at least 300 px",
    ),
    "dual with one image": (
        dual(PNG),
        "input.images: must hold exactly 2 images for scene hug_pro (got 1 items)",
    ),
    "dual with image": (
        effect("hug_pro", input={"image": PNG}),
        "input.images: must hold exactly 2 images for scene hug_pro (got null)",
    ),
    "dual second not image": (dual(PNG, "data:x"), "input.images[1]: must be raw base64"),
    "dual 10 s": (
        dual(PNG, PNG, duration="10"),
        "input.duration: '10' is not allowed for scene hug_pro (allowed: 5)",
    ),
    "single 7 s": (
        effect(input={"image": PNG, "duration": 7}),
        "input.duration: '7' is not allowed for scene bloombloom (allowed: 5, 10)",
    ),
    "duration float": (
        effect(input={"image": PNG, "duration": 5.5}),
        "input.duration: must be a whole number of seconds",
    ),
    "model_name at the top": (effect(model_name="kling-v1"), "model_name: not accepted"),
}


@pytest.mark.parametrize(("data", "expected"), REJECTED.values(), ids=REJECTED.keys())
def test_rejected_with_field_and_rule_named(data: Any, expected: str) -> None:
    assert refusal(validate, data).startswith(expected)


def test_scene_lists_and_duration_rule_are_operator_data() -> None:
    table = DEFAULT_TABLE.with_overrides(
        {ANY_MODEL: {"scenes": ["bloombloom"], "duration_required": True, "retired_scenes": []}}
    )
    validate(effect(input={"image": PNG, "duration": 5}), table)

    def check(data: Any) -> KindRequest:
        return validate(data, table)

    assert refusal(check, effect()) == "input.duration: required"
    assert refusal(check, effect("tiger_hug")) == "effect_scene: 'tiger_hug' is not a known scene"
