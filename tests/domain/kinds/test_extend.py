"""video-extend validation: the video id is required and kept apart for the caller to map."""

from __future__ import annotations

from typing import Any

import pytest

from kling_gateway.domain.kinds.common import Context, KindRequest
from kling_gateway.domain.kinds.extend import DEFAULT_TABLE, ExtendCaps, validate_extend
from kling_gateway.domain.kinds.table import ANY_MODEL, KindTable
from tests.domain.kinds.media import DROP, merge, refusal


def extend(**fields: Any) -> dict[str, Any]:
    return merge({"video_id": "842250903629086785"}, fields)


def validate(data: Any, table: KindTable[ExtendCaps] = DEFAULT_TABLE) -> KindRequest:
    return validate_extend(data, Context(table[ANY_MODEL]))


@pytest.mark.parametrize(
    "data",
    [
        extend(),
        extend(prompt="keep walking", negative_prompt="blur", cfg_scale=0.3),
        extend(prompt=None, external_task_id="e"),
    ],
)
def test_accepted(data: dict[str, Any]) -> None:
    result = validate(data)
    assert result.kind == "video-extend"
    assert result.source_video_id == "842250903629086785"
    assert (result.model_name, result.mode, result.duration) == (None, None, None)
    assert "model_name" not in result.upstream_body


REJECTED: dict[str, tuple[Any, str]] = {
    "no video_id": (extend(video_id=DROP), "video_id: required"),
    "video_id number": (extend(video_id=5), "video_id: must be a string (got 5)"),
    "video_id blank": (extend(video_id=" "), "video_id: must not be empty"),
    "video_id too long": (extend(video_id="1" * 129), "video_id: must be at most 128 characters"),
    "prompt 2501": (extend(prompt="p" * 2501), "prompt: must be at most 2500 characters"),
    "cfg 2": (extend(cfg_scale=2), "cfg_scale: must be between 0 and 1 (got 2)"),
    "model_name": (
        extend(model_name="kling-v1"),
        "model_name: not accepted by this task type (Kling chooses the model)",
    ),
    "callback relative": (extend(callback_url="/cb"), "callback_url: must be an http or https"),
}


@pytest.mark.parametrize(("data", "expected"), REJECTED.values(), ids=REJECTED.keys())
def test_rejected_with_field_and_rule_named(data: Any, expected: str) -> None:
    assert refusal(validate, data).startswith(expected)


def test_uncertain_fields_are_operator_data() -> None:
    """§11.8: whether Kling honours negative_prompt and cfg_scale on extend is unsettled."""
    table = DEFAULT_TABLE.with_overrides({ANY_MODEL: {"cfg_scale": False}})
    message = refusal(lambda d: validate(d, table), extend(cfg_scale=0.5))
    assert message == "cfg_scale: not supported for video-extend"
    validate(extend(negative_prompt="x"), table)
