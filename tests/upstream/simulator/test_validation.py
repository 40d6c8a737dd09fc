"""Kling's own create-body rules (kling-api.md §3) answer 400/1201 naming the field, or 1200."""

from __future__ import annotations

from typing import Any

import pytest

from kling_gateway.upstream.simulator.validation import validate_create

from .conftest import Harness

CUSTOM_SHOTS = [
    {"index": 1, "prompt": "two friends talk", "duration": "4"},
    {"index": 2, "prompt": "a runner sprints", "duration": "3"},
    {"index": 3, "prompt": "sunset", "duration": "3"},
]

INVALID: list[tuple[dict[str, Any], str]] = [
    ({"model_name": "kling-v9", "prompt": "p"}, "model_name"),
    ({"model_name": 3, "prompt": "p"}, "model_name"),
    ({}, "prompt"),
    ({"prompt": "   "}, "prompt"),
    ({"prompt": "x" * 2501}, "prompt"),
    ({"prompt": 5}, "prompt"),
    ({"prompt": "p", "negative_prompt": "x" * 2501}, "negative_prompt"),
    ({"prompt": "p", "duration": "7"}, "duration"),
    ({"prompt": "p", "duration": 5}, "duration"),
    ({"prompt": "p", "model_name": "kling-v3", "duration": "16"}, "duration"),
    ({"prompt": "p", "model_name": "kling-v3", "duration": "2"}, "duration"),
    ({"prompt": "p", "mode": "ultra"}, "mode"),
    ({"prompt": "p", "mode": "4k"}, "mode"),
    ({"prompt": "p", "aspect_ratio": "4:3"}, "aspect_ratio"),
    ({"prompt": "p", "sound": "loud", "model_name": "kling-v3"}, "sound"),
    ({"prompt": "p", "sound": "on"}, "sound"),
    ({"prompt": "p", "sound": "on", "model_name": "kling-v2-6", "mode": "std"}, "sound"),
    ({"prompt": "p", "cfg_scale": 1.5}, "cfg_scale"),
    ({"prompt": "p", "cfg_scale": True}, "cfg_scale"),
    ({"prompt": "p", "camera_control": {"type": "orbit"}}, "camera_control.type"),
    ({"prompt": "p", "camera_control": {"type": "simple"}}, "camera_control.config"),
    (
        {"prompt": "p", "camera_control": {"type": "simple", "config": {"zoom": 5, "pan": 1}}},
        "camera_control.config",
    ),
    (
        {"prompt": "p", "camera_control": {"type": "simple", "config": {"zoom": 11}}},
        "camera_control.config.zoom",
    ),
    (
        {"prompt": "p", "camera_control": {"type": "forward_up", "config": {"zoom": 1}}},
        "camera_control.config",
    ),
    ({"prompt": "p", "multi_shot": True}, "multi_shot"),
    ({"prompt": "p", "multi_shot": "yes", "model_name": "kling-v3"}, "multi_shot"),
    ({"model_name": "kling-v3", "multi_shot": True, "prompt": "p"}, "shot_type"),
    ({"model_name": "kling-v3", "multi_shot": True, "shot_type": "customize"}, "multi_prompt"),
    (
        {
            "model_name": "kling-v3",
            "multi_shot": True,
            "shot_type": "customize",
            "multi_prompt": CUSTOM_SHOTS,
        },
        "multi_prompt durations",  # 10 s of shots against the default 5 s duration
    ),
    (
        {
            "model_name": "kling-v3",
            "multi_shot": True,
            "shot_type": "customize",
            "duration": "10",
            "multi_prompt": [*CUSTOM_SHOTS[:2], {"index": 3, "prompt": "x" * 513, "duration": "3"}],
        },
        "multi_prompt[2].prompt",
    ),
    (
        {"model_name": "kling-v3", "multi_shot": True, "shot_type": "intelligence", "prompt": ""},
        "prompt",
    ),
    ({"prompt": "p", "model_name": "kling-v3", "voice_list": [{"voice_id": "v"}]}, "voice_list"),
    (
        {
            "prompt": "p",
            "model_name": "kling-v3",
            "sound": "on",
            "voice_list": [{"voice_id": "a"}] * 3,
        },
        "voice_list",
    ),
    ({"prompt": "p", "watermark_info": {"enabled": "yes"}}, "watermark_info"),
    ({"prompt": "p", "callback_url": "ftp://x"}, "callback_url"),
    ({"prompt": "p", "external_task_id": 12}, "external_task_id"),
]


@pytest.mark.parametrize(("body", "field"), INVALID)
async def test_invalid_fields_answer_1201_naming_the_field(
    harness: Harness, body: dict[str, Any], field: str
) -> None:
    response = await harness.create(body)
    assert response.status_code == 400
    payload = response.json()
    assert payload["code"] == 1201
    assert field in payload["message"]
    assert harness.sim.tasks_created() == 0


@pytest.mark.parametrize("raw", [b"not json", b"[1, 2]", b'"text"'])
async def test_unreadable_body_is_1200(harness: Harness, raw: bytes) -> None:
    response = await harness.client.post(
        "/v1/videos/text2video",
        content=raw,
        headers={**harness.auth(), "content-type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["code"] == 1200


VALID: list[dict[str, Any]] = [
    {"prompt": "p"},
    {"model": "whatever", "prompt": "p"},  # the old field name is treated like an empty model_name
    {"model_name": "", "prompt": "p"},
    {"model_name": "kling-v2-6", "prompt": "p", "mode": "pro", "sound": "on", "duration": "10"},
    {"model_name": "kling-v2-master", "prompt": "p", "cfg_scale": 0.5},  # ignored, not rejected
    {"model_name": "kling-v3", "prompt": "p", "duration": "3", "mode": "4k"},
    {
        "model_name": "kling-v3",
        "prompt": "p",
        "duration": "15",
        "sound": "on",
        "voice_list": [{"voice_id": "1"}],
    },
    {
        "model_name": "kling-v3",
        "multi_shot": True,
        "shot_type": "customize",
        "prompt": "",
        "duration": "10",
        "multi_prompt": CUSTOM_SHOTS,
    },
    {
        "model_name": "kling-v3",
        "multi_shot": True,
        "shot_type": "intelligence",
        "prompt": "chef",
        "duration": "8",
    },
    {"prompt": "p", "camera_control": {"type": "simple", "config": {"zoom": 5, "pan": 0}}},
    {"prompt": "p", "camera_control": {"type": "forward_up"}},
    {"prompt": "p", "aspect_ratio": "9:16", "watermark_info": {"enabled": True}, "unknown_key": 1},
    {"prompt": "p", "callback_url": "", "external_task_id": ""},
]


@pytest.mark.parametrize("body", VALID)
async def test_valid_bodies_create_tasks(harness: Harness, body: dict[str, Any]) -> None:
    response = await harness.create(body)
    assert response.status_code == 200, response.text
    assert response.json()["data"]["task_status"] == "submitted"


def test_4k_is_a_switch() -> None:
    body = {"model_name": "kling-v3", "prompt": "p", "mode": "4k"}
    assert validate_create(body).mode == "4k"
    with pytest.raises(Exception, match="mode"):
        validate_create(body, allow_4k=False)


@pytest.mark.parametrize(
    ("body", "units"),
    [
        ({"prompt": "p"}, "2.5"),
        ({"prompt": "p", "mode": "pro", "duration": "10"}, "8"),
        ({"model_name": "kling-v3", "prompt": "p", "duration": "3", "mode": "pro"}, "2.4"),
        ({"model_name": "kling-v2-6", "prompt": "p", "mode": "pro", "sound": "on"}, "6"),
    ],
)
def test_unit_pricing(body: dict[str, Any], units: str) -> None:
    assert validate_create(body).units == units
