"""motion-control validation as a table."""

from __future__ import annotations

from typing import Any

import pytest

from kling_gateway.domain.kinds.common import Context, KindRequest, model_name
from kling_gateway.domain.kinds.motion import DEFAULT_MODEL, DEFAULT_TABLE, validate_motion
from tests.domain.kinds.media import DROP, JPEG, PNG, URL, b64, merge, png, refusal

VIDEO = "https://example.com/dance.mp4"


def motion(model: str = "kling-v2-6", /, **fields: Any) -> dict[str, Any]:
    base = {
        "model_name": model,
        "image_url": PNG,
        "video_url": VIDEO,
        "character_orientation": "image",
        "mode": "std",
    }
    return merge(base, fields)


def validate(data: Any) -> KindRequest:
    name = model_name(data, DEFAULT_MODEL)
    return validate_motion(data, Context(DEFAULT_TABLE[name], upstream_model=name))


ACCEPTED = {
    "minimal": motion(),
    "default model": motion(model_name=DROP),
    "url image, pro, video orientation": motion(
        image_url=URL, mode="pro", character_orientation="video"
    ),
    "jpeg, prompt, keep sound no": motion(image_url=JPEG, prompt="dance", keep_original_sound="no"),
    "v3 with one element": motion("kling-v3", element_list=[{"element_id": 1}]),
    "tall image within 1:2.5": motion(image_url=b64(png(300, 750))),
}


@pytest.mark.parametrize("data", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_accepted(data: dict[str, Any]) -> None:
    result = validate(data)
    assert result.kind == "motion-control"
    assert result.duration is None  # billed on the output's length
    assert result.mode in ("std", "pro")


REJECTED: dict[str, tuple[Any, str]] = {
    "no mode": (motion(mode=DROP), "mode: required (std or pro)"),
    "mode 4k": (motion(mode="4k"), "mode: '4k' is not allowed for model kling-v2-6"),
    "no image": (motion(image_url=DROP), "image_url: required"),
    "image data URL": (motion(image_url="data:," + PNG), "image_url: must be raw base64"),
    "image too small": (motion(image_url=b64(png(300, 299))), "image_url: width and height must"),
    "image too large": (
        motion(image_url=b64(png(65537, 30000))),
        "image_url: width and height must be at most 65536 px",
    ),
    "no video": (motion(video_url=DROP), "video_url: required"),
    "video base64": (motion(video_url="AAAA"), "video_url: must be an http or https URL"),
    "no orientation": (motion(character_orientation=DROP), "character_orientation: required"),
    "orientation bad": (
        motion(character_orientation="left"),
        "character_orientation: must be one of image, video",
    ),
    "keep sound bool": (motion(keep_original_sound=False), "keep_original_sound: must be a string"),
    "element on v2-6": (
        motion(element_list=[{"element_id": 1}]),
        "element_list: not supported for model kling-v2-6",
    ),
    "two elements on v3": (
        motion("kling-v3", element_list=[{"element_id": 1}] * 2),
        "element_list: must hold at most 1 elements (got 2)",
    ),
    "prompt number": (motion(prompt=1), "prompt: must be a string (got 1)"),
}


@pytest.mark.parametrize(("data", "expected"), REJECTED.values(), ids=REJECTED.keys())
def test_rejected_with_field_and_rule_named(data: Any, expected: str) -> None:
    assert refusal(validate, data).startswith(expected)
