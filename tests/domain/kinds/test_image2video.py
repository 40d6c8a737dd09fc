"""image2video validation as tables: each rule from both sides, each refusal naming the field."""

from __future__ import annotations

from typing import Any

import pytest

from kling_gateway.domain.kinds.common import Context, KindRequest, model_name
from kling_gateway.domain.kinds.image2video import (
    DEFAULT_MODEL,
    DEFAULT_TABLE,
    Image2VideoCaps,
    validate_image2video,
)
from kling_gateway.domain.kinds.table import KindTable
from kling_gateway.errors import BadRequest
from tests.domain.kinds.media import DROP, JPEG, PNG, URL, b64, merge, png, refusal


def i2v(model: str = "kling-v1", /, **fields: Any) -> dict[str, Any]:
    return merge({"model_name": model, "image": PNG, "prompt": "a cat"}, fields)


def validate(data: Any, table: KindTable[Image2VideoCaps] = DEFAULT_TABLE) -> KindRequest:
    name = model_name(data, DEFAULT_MODEL)
    return validate_image2video(data, Context(table[name], upstream_model="up-" + name))


def masks(count: int = 1, mask: str = PNG, points: int = 2) -> list[dict[str, Any]]:
    path = [{"x": i, "y": i} for i in range(points)]
    return [{"mask": mask, "trajectories": path} for _ in range(count)]


SIMPLE = {"type": "simple", "config": {"zoom": 5}}
V26_VOICE = {"voice_list": [{"voice_id": "v"}], "sound": "on", "mode": "pro"}

ACCEPTED: dict[str, dict[str, Any]] = {
    "url image": i2v(image=URL),
    "jpeg image": i2v(image=JPEG),
    "no prompt (optional by default)": i2v(prompt=DROP),
    "default model": {"image": PNG},
    "v1 tail std 5": i2v(image_tail=PNG),
    "v1 tail pro 5": i2v(image_tail=PNG, mode="pro"),
    "tail without aspect rule": i2v("kling-v1-6", image_tail=b64(png(900, 300)), mode="pro"),
    "v1-6 tail only, pro 10": i2v(
        "kling-v1-6", image=DROP, image_tail=PNG, mode="pro", duration=10
    ),
    "v1 static mask 5 s": i2v(static_mask=PNG),
    "v1 six dynamic masks": i2v(dynamic_masks=masks(6)),
    "v1 77 points at 5 s": i2v(dynamic_masks=masks(points=77)),
    "masks as URLs": i2v(static_mask=URL, dynamic_masks=masks(mask=URL)),
    "mask same aspect, other size": i2v(static_mask=b64(png(640, 640))),
    "v1-5 camera simple pro 5": i2v("kling-v1-5", camera_control=SIMPLE, mode="pro"),
    "v1 cfg 0.5": i2v(cfg_scale=0.5),
    "v2-master mode tolerated": i2v("kling-v2-master", mode="pro"),
    "v2-6 sound pro": i2v("kling-v2-6", sound="on", mode="pro"),
    "v2-6 voice pro 10": i2v("kling-v2-6", duration="10", prompt="hi <<<voice_1>>>", **V26_VOICE),
    "v2-6 tail silent pro": i2v("kling-v2-6", image_tail=PNG, mode="pro", sound="off"),
    "v3 three elements": i2v("kling-v3", element_list=[{"element_id": 829836802793406551}] * 3),
    "v3 element id as string": i2v("kling-v3", element_list=[{"element_id": "829836802793406551"}]),
    "v3 15 s sound": i2v("kling-v3", duration=15, sound="on"),
    "v3 multi-shot": i2v(
        "kling-v3",
        multi_shot=True,
        shot_type="customize",
        multi_prompt=[{"index": 1, "prompt": "p", "duration": "5"}],
    ),
    "empty voice list on v1": i2v(voice_list=[]),
    "empty element list on v1": i2v(element_list=[]),
}


@pytest.mark.parametrize("data", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_accepted(data: dict[str, Any]) -> None:
    before = dict(data)
    result = validate(data)
    assert result.kind == "image2video"
    assert result.upstream_body["model_name"].startswith("up-")
    assert data == before  # the input body is not mutated


def test_billed_facts_and_forwarded_body() -> None:
    data = i2v(
        "kling-v2-6",
        duration=10,
        prompt="<<<voice_1>>>",
        callback_url=URL,
        external_task_id="e1",
        **V26_VOICE,
    )
    result = validate(data)
    assert (result.model_name, result.mode, result.duration) == ("kling-v2-6", "pro", 10)
    assert result.sound and result.voice_control
    assert (result.callback_url, result.external_task_id) == (URL, "e1")
    assert result.upstream_body["duration"] == "10"
    assert "callback_url" not in result.upstream_body
    assert "external_task_id" not in result.upstream_body
    plain = validate(i2v("kling-v2-master", mode="pro"))
    assert plain.mode is None and "mode" not in plain.upstream_body


V1 = "for model kling-v1"
REJECTED: dict[str, tuple[Any, str]] = {
    "no frame": (i2v(image=DROP), "image: required unless image_tail is given"),
    "image null, no tail": (i2v(image=None), "image: required unless image_tail is given"),
    "image data URL": (i2v(image="data:image/png;base64," + PNG), "image: must be raw base64"),
    "image 299 px": (i2v(image=b64(png(299, 400))), "image: width and height must be at least"),
    "image too wide": (i2v(image=b64(png(751, 300))), "image: aspect ratio (width:height)"),
    "tail bad base64": (i2v(image_tail="abc"), "image_tail: is not valid base64"),
    "tail only on v1": (
        i2v(image=DROP, image_tail=PNG),
        f"image: required {V1} (a tail frame alone is not supported)",
    ),
    "tail on v1 10 s": (
        i2v(image_tail=PNG, duration=10),
        f"image_tail: needs duration 5 {V1} (got mode std, duration 10)",
    ),
    "tail on v1-6 std": (
        i2v("kling-v1-6", image_tail=PNG),
        "image_tail: needs mode pro for model kling-v1-6 (got mode std, duration 5)",
    ),
    "tail on v2-master": (
        i2v("kling-v2-master", image_tail=PNG),
        "image_tail: not supported for model kling-v2-master",
    ),
    "tail with sound on v2-6": (
        i2v("kling-v2-6", image_tail=PNG, mode="pro", sound="on"),
        "image_tail: needs sound 'off' for model kling-v2-6",
    ),
    "tail with multi-shot": (
        i2v("kling-v3", image_tail=PNG, multi_shot=True, shot_type="intelligence"),
        "image_tail: not allowed when multi_shot is true",
    ),
    "tail and camera": (
        i2v("kling-v1-5", image_tail=PNG, camera_control=SIMPLE, mode="pro"),
        "camera_control: cannot be combined with image_tail",
    ),
    "tail and masks": (
        i2v(image_tail=PNG, static_mask=PNG),
        "static_mask/dynamic_masks: cannot be combined with image_tail",
    ),
    "masks and camera": (
        i2v("kling-v1-5", dynamic_masks=masks(), camera_control=SIMPLE, mode="pro"),
        "camera_control: cannot be combined with static_mask/dynamic_masks",
    ),
    "masks on v1-6": (i2v("kling-v1-6", static_mask=PNG), "static_mask: not supported for model"),
    "masks on v1 10 s": (
        i2v(dynamic_masks=masks(), duration=10),
        f"dynamic_masks: needs duration 5 {V1}",
    ),
    "seven mask groups": (i2v(dynamic_masks=masks(7)), "dynamic_masks: must hold at most 6"),
    "one trajectory point": (
        i2v(dynamic_masks=masks(points=1)),
        "dynamic_masks[0].trajectories: must hold at least 2 points (got 1)",
    ),
    "78 points at 5 s": (
        i2v(dynamic_masks=masks(points=78)),
        "dynamic_masks[0].trajectories: must hold at most 77 points (got 78)",
    ),
    "trajectories missing": (
        i2v(dynamic_masks=[{"mask": PNG}]),
        "dynamic_masks[0].trajectories: required",
    ),
    "point x float": (
        i2v(dynamic_masks=[{"mask": PNG, "trajectories": [{"x": 1.5, "y": 0}, {"x": 1, "y": 1}]}]),
        "dynamic_masks[0].trajectories[0].x: must be a whole number of pixels >= 0 (got 1.5)",
    ),
    "mask group not object": (i2v(dynamic_masks=["m"]), "dynamic_masks[0]: must be an object"),
    "mask not an image": (
        i2v(dynamic_masks=masks(mask=b64(b"GIF89a" + bytes(30)))),
        "dynamic_masks[0].mask: must be a JPEG or PNG image",
    ),
    "mask aspect differs": (
        i2v(static_mask=b64(png(640, 320))),
        "static_mask: must have the image's aspect ratio (mask 640x320, image 320x320)",
    ),
    "masks differ in size": (
        i2v(static_mask=PNG, dynamic_masks=masks(mask=b64(png(640, 640)))),
        "dynamic_masks[0].mask: must have the same resolution as static_mask",
    ),
    "camera on v1": (i2v(camera_control=SIMPLE), f"camera_control: not supported {V1}"),
    "camera v1-5 std": (
        i2v("kling-v1-5", camera_control=SIMPLE),
        "camera_control: needs mode pro, duration 5 for model kling-v1-5",
    ),
    "camera preset on v1-5": (
        i2v("kling-v1-5", camera_control={"type": "down_back"}, mode="pro"),
        "camera_control.type: 'down_back' is not supported for model kling-v1-5 (allowed: simple)",
    ),
    "camera two axes": (
        i2v(
            "kling-v1-5",
            camera_control={"type": "simple", "config": {"zoom": 1, "pan": 1}},
            mode="pro",
        ),
        "camera_control.config: exactly one of",
    ),
    "mode unknown": (i2v(mode="ultra"), f"mode: 'ultra' is not allowed {V1} (allowed: std, pro)"),
    "duration 15 on v1": (i2v(duration=15), f"duration: '15' is not allowed {V1}"),
    "duration 2 on v3": (i2v("kling-v3", duration=2), "duration: '2' is not allowed"),
    "sound on v1": (i2v(sound="on"), f"sound: not supported {V1}"),
    "sound on v2-6 std": (
        i2v("kling-v2-6", sound="on"),
        "sound: needs mode pro for model kling-v2-6 (got mode std, duration 5)",
    ),
    "sound yes": (i2v("kling-v3", sound="yes"), "sound: must be one of on, off (got 'yes')"),
    "cfg on v3": (i2v("kling-v3", cfg_scale=0.5), "cfg_scale: not supported for model kling-v3"),
    "cfg 1.5": (i2v(cfg_scale=1.5), "cfg_scale: must be between 0 and 1 (got 1.5)"),
    "prompt 2501": (i2v(prompt="x" * 2501), "prompt: must be at most 2500 characters"),
    "negative number": (i2v(negative_prompt=1), "negative_prompt: must be a string (got 1)"),
    "voice on v1": (i2v(voice_list=[{"voice_id": "v"}]), f"voice_list: not supported {V1}"),
    "voice on v3 (maps: no voice control)": (
        i2v("kling-v3", voice_list=[{"voice_id": "v"}], sound="on"),
        "voice_list: not supported for model kling-v3",
    ),
    "voice v2-6 without sound": (
        i2v("kling-v2-6", voice_list=[{"voice_id": "v"}], mode="pro"),
        "voice_list: a non-empty voice_list requires sound 'on' (sound is absent)",
    ),
    "voice v2-6 std": (
        i2v("kling-v2-6", voice_list=[{"voice_id": "v"}], sound="on", mode="std"),
        "sound: needs mode pro for model kling-v2-6",
    ),
    "three voices": (
        i2v("kling-v2-6", **{**V26_VOICE, "voice_list": [{"voice_id": "v"}] * 3}),
        "voice_list: must hold at most 2 voices (got 3)",
    ),
    "voice ref beyond the list": (
        i2v("kling-v2-6", prompt="<<<voice_2>>>", **V26_VOICE),
        "prompt: <<<voice_2>>> refers to a voice that is not in voice_list",
    ),
    "elements on v2-6": (
        i2v("kling-v2-6", element_list=[{"element_id": 1}]),
        "element_list: not supported for model kling-v2-6",
    ),
    "four elements on v3": (
        i2v("kling-v3", element_list=[{"element_id": 1}] * 4),
        "element_list: must hold at most 3 elements (got 4)",
    ),
    "element id float": (
        i2v("kling-v3", element_list=[{"element_id": 8.29e17}]),
        "element_list[0].element_id: must be a positive integer id",
    ),
    "element id missing": (
        i2v("kling-v3", element_list=[{}]),
        "element_list[0].element_id: must be a positive integer id (got null)",
    ),
    "multi-shot on v2-6": (
        i2v("kling-v2-6", multi_shot=True, shot_type="intelligence"),
        "multi_shot: true is not supported for model kling-v2-6",
    ),
    "watermark string": (i2v(watermark_info="yes"), "watermark_info: must be an object"),
    "callback ftp": (i2v(callback_url="ftp://x/y"), "callback_url: must be an http or https URL"),
    "external id blank": (i2v(external_task_id=" "), "external_task_id: must not be empty"),
    "model number": (
        {"model_name": 5, "image": PNG},
        "model_name: must be a non-empty string (got 5)",
    ),
}


@pytest.mark.parametrize(("data", "expected"), REJECTED.values(), ids=REJECTED.keys())
def test_rejected_with_field_and_rule_named(data: Any, expected: str) -> None:
    assert refusal(validate, data).startswith(expected)


def test_elements_and_voices_are_exclusive() -> None:
    table = DEFAULT_TABLE.with_overrides({"kling-v3": {"voice": True}})
    data = i2v(
        "kling-v3", element_list=[{"element_id": 1}], voice_list=[{"voice_id": "v"}], sound="on"
    )
    message = refusal(lambda d: validate(d, table), data)
    assert message == "voice_list: cannot be combined with element_list"


def test_no_point_limit_at_10_s() -> None:
    """Kling bounds trajectories at 77 points for 5 s only; a 10 s row is an operator's call."""
    table = DEFAULT_TABLE.with_overrides({"kling-v1": {"masks": True}})
    validate(i2v(dynamic_masks=masks(points=100), duration=10), table)


def test_prompt_rule_is_operator_data() -> None:
    """Sources disagree whether single-shot needs a prompt (§11.9): a table row decides."""
    table = DEFAULT_TABLE.with_overrides({"kling-v3": {"prompt_required": True}})
    validate(i2v("kling-v3", prompt=DROP))
    message = refusal(lambda d: validate(d, table), i2v("kling-v3", prompt=" "))
    assert message.startswith("prompt: required and must not be empty")


def test_strict_refuses_unknown_fields_and_lenient_forwards_them() -> None:
    data = i2v(aspect_ratio="16:9")
    assert validate(data).upstream_body["aspect_ratio"] == "16:9"
    caps = DEFAULT_TABLE["kling-v1"]
    message = refusal(lambda d: validate_image2video(d, Context(caps, strict=True)), data)
    assert message == "aspect_ratio: unknown field"


def test_a_body_that_is_not_an_object_is_a_bad_request() -> None:
    with pytest.raises(BadRequest):
        validate_image2video([], Context(DEFAULT_TABLE["kling-v1"]))


def test_default_table_rows() -> None:
    assert DEFAULT_TABLE.names()[0] == DEFAULT_MODEL
    assert DEFAULT_TABLE["kling-v3"].durations == frozenset(range(3, 16))
    assert DEFAULT_TABLE["kling-v2-6"].voice is not None
    assert DEFAULT_TABLE["kling-v3"].voice is None
    assert DEFAULT_TABLE.with_overrides({}).to_dict() == DEFAULT_TABLE.to_dict()
