"""multi-image2video validation as a table."""

from __future__ import annotations

from typing import Any

import pytest

from kling_gateway.domain.kinds.common import Context, KindRequest, model_name
from kling_gateway.domain.kinds.multi_image import (
    DEFAULT_MODEL,
    DEFAULT_TABLE,
    validate_multi_image,
)
from tests.domain.kinds.media import DROP, JPEG, PNG, URL, b64, merge, png, refusal


def multi(**fields: Any) -> dict[str, Any]:
    base = {"model_name": "kling-v1-6", "image_list": [{"image": PNG}], "prompt": "two cats"}
    return merge(base, fields)


def validate(data: Any) -> KindRequest:
    name = model_name(data, DEFAULT_MODEL)
    caps = DEFAULT_TABLE.get(name)
    if caps is None:  # the caller's job: an unknown model is a 1203 before validation
        pytest.fail(f"no row for {name}")
    return validate_multi_image(data, Context(caps, upstream_model=name))


ACCEPTED = {
    "one image": multi(),
    "four images, mixed forms": multi(
        image_list=[{"image": PNG}, {"image": JPEG}, {"image": URL}, {"image": PNG}]
    ),
    "default model": multi(model_name=DROP),
    "pro 10 s 9:16": multi(mode="pro", duration="10", aspect_ratio="9:16"),
}


@pytest.mark.parametrize("data", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_accepted(data: dict[str, Any]) -> None:
    result = validate(data)
    assert result.kind == "multi-image2video"
    assert result.model_name == "kling-v1-6"
    assert result.upstream_body["duration"] in ("5", "10")


REJECTED: dict[str, tuple[Any, str]] = {
    "no image_list": (multi(image_list=DROP), "image_list: required"),
    "empty image_list": (multi(image_list=[]), "image_list: must hold 1 to 4 images (got 0)"),
    "five images": (
        multi(image_list=[{"image": PNG}] * 5),
        "image_list: must hold at most 4 images (got 5)",
    ),
    "image_list object": (multi(image_list={"image": PNG}), "image_list: must be an array"),
    "item a string": (multi(image_list=[PNG]), "image_list[0]: must be an object with an image"),
    "item without image": (multi(image_list=[{}]), "image_list[0].image: must be a string"),
    "small image": (
        multi(image_list=[{"image": PNG}, {"image": b64(png(300, 200))}]),
        "image_list[1].image: width and height must be at least 300 px (got 300x200)",
    ),
    "no prompt": (multi(prompt=DROP), "prompt: required and must not be empty"),
    "blank prompt": (multi(prompt="  "), "prompt: required and must not be empty"),
    "duration 3": (multi(duration=3), "duration: '3' is not allowed for model kling-v1-6"),
    "mode 4k": (multi(mode="4k"), "mode: '4k' is not allowed for model kling-v1-6"),
    "aspect 4:3": (multi(aspect_ratio="4:3"), "aspect_ratio: must be one of 16:9, 9:16, 1:1"),
}


@pytest.mark.parametrize(("data", "expected"), REJECTED.values(), ids=REJECTED.keys())
def test_rejected_with_field_and_rule_named(data: Any, expected: str) -> None:
    assert refusal(validate, data).startswith(expected)


def test_only_kling_v1_6_has_a_row() -> None:
    assert DEFAULT_TABLE.names() == ["kling-v1-6"]
