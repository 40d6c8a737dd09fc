from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import pytest

from kling_gateway.domain.models import DEFAULT_CAPABILITIES, CapabilityTable
from kling_gateway.domain.request import Text2VideoRequest, extract_model_name, validate_text2video
from kling_gateway.errors import BadRequest, InvalidParameter

EXAMPLES_PATH = Path("/work/shared/reference/kling-examples.json")
DROP = object()  # marks a key to remove from a base body


def body(model: str = "kling-v1", /, **fields: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"model_name": model, "prompt": "a fox in the snow"}
    for key, value in fields.items():
        if value is DROP:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def validate(
    data: Any, table: CapabilityTable = DEFAULT_CAPABILITIES, **kwargs: Any
) -> Text2VideoRequest:
    name = extract_model_name(data)
    caps = table.get(name)
    assert caps is not None, name
    return validate_text2video(data, caps=caps, upstream_model="up-" + name, **kwargs)


def rejection(data: Any, **kwargs: Any) -> str:
    with pytest.raises(InvalidParameter) as info:
        validate(data, **kwargs)
    assert info.value.code == 1201
    assert info.value.http_status == 400
    return info.value.message


def shots(*durations: Any, prompt: str = "shot") -> list[dict[str, Any]]:
    return [{"index": i + 1, "prompt": prompt, "duration": d} for i, d in enumerate(durations)]


def v3_custom(total: Any, multi_prompt: Any, **fields: Any) -> dict[str, Any]:
    return body(
        "kling-v3",
        multi_shot=True,
        shot_type="customize",
        duration=total,
        multi_prompt=multi_prompt,
        **fields,
    )


def camera(move: str = "simple", **config: Any) -> dict[str, Any]:
    return {"type": move, "config": config} if config or move == "simple" else {"type": move}


def _examples() -> dict[str, dict[str, Any]]:
    data: dict[str, dict[str, Any]] = json.loads(EXAMPLES_PATH.read_text())["create_requests"]
    return data


EXAMPLES = _examples()

# ------------------------------------------------------ accepted bodies (one side of each boundary)

ACCEPTED = {
    "prompt 2500 chars": body(prompt="x" * 2500),
    "negative_prompt 2500 chars": body(negative_prompt="n" * 2500),
    "mode pro": body(mode="pro"),
    "aspect 9:16": body(aspect_ratio="9:16"),
    "aspect 1:1": body(aspect_ratio="1:1"),
    "aspect 16:9": body(aspect_ratio="16:9"),
    "cfg 0": body(cfg_scale=0),
    "cfg 1": body(cfg_scale=1),
    "cfg 0.5 on v1-6": body("kling-v1-6", cfg_scale=0.5),
    "sound off on v1": body(sound="off"),
    "sound on v3 std": body("kling-v3", sound="on", mode="std"),
    "multi_shot false on v1": body(multi_shot=False),
    "6 shots of 1s": v3_custom("6", shots(1, 1, 1, 1, 1, 1)),
    "1 shot of full length": v3_custom(15, shots("15")),
    "shot prompt 512 chars": v3_custom("5", shots("5", prompt="s" * 512)),
    "intelligence without multi_prompt": body(
        "kling-v3", multi_shot=True, shot_type="intelligence"
    ),
    "2 voices": body(
        "kling-v3",
        voice_list=[{"voice_id": "a"}, {"voice_id": "b"}],
        sound="on",
        prompt="x<<<voice_2>>>",
    ),
    "voices without reference, sound on": body(
        "kling-v2-6", voice_list=[{"voice_id": "a"}], sound="on", mode="pro"
    ),
    "empty voice_list on v1": body(voice_list=[]),
    "camera zoom 10": body(camera_control=camera(zoom=10)),
    "camera pan -10": body(camera_control=camera(pan=-10, zoom=0)),
    "camera float": body(camera_control=camera(tilt=0.5)),
    "camera preset, config {}": body(camera_control={"type": "down_back", "config": {}}),
    "camera preset, config null": body(
        camera_control={"type": "left_turn_forward", "config": None}
    ),
    "watermark false": body(watermark_info={"enabled": False}),
    "callback http": body(callback_url="http://example.com/cb"),
    "callback 2048 chars": body(callback_url="https://example.com/" + "a" * (2048 - 20)),
    "callback with port": body(callback_url="https://example.com:8443/cb?x=1"),
    "external id 64 chars": body(external_task_id="e" * 64),
    "mode on no-mode model": body("kling-v2-master", mode="pro"),
    "every known field null": body(
        **{
            k: None
            for k in (
                "negative_prompt",
                "cfg_scale",
                "mode",
                "camera_control",
                "aspect_ratio",
                "duration",
                "sound",
                "multi_shot",
                "shot_type",
                "multi_prompt",
                "voice_list",
                "watermark_info",
                "callback_url",
                "external_task_id",
            )
        }
    ),
}


@pytest.mark.parametrize("data", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_accepted(data: dict[str, Any]) -> None:
    result = validate(data)
    assert result.upstream_body["model_name"].startswith("up-")


@pytest.mark.parametrize("name", EXAMPLES)
def test_reference_examples_validate(name: str) -> None:
    data = copy.deepcopy(EXAMPLES[name])
    result = validate(data)
    assert "callback_url" not in result.upstream_body
    assert "external_task_id" not in result.upstream_body
    assert result.external_task_id == data.get("external_task_id")
    assert result.callback_url == data.get("callback_url")
    assert data == EXAMPLES[name]  # the input body is not mutated


# ----------------------------------------------------------- rejected bodies: (body, exact message)

MODEL = "for model kling-v1"
REJECTED: dict[str, tuple[Any, str]] = {
    # model name
    "model_name number": (
        {"model_name": 5, "prompt": "p"},
        "model_name: must be a non-empty string (got 5)",
    ),
    "model_name empty": (
        {"model_name": " ", "prompt": "p"},
        "model_name: must be a non-empty string (got ' ')",
    ),
    "legacy model empty": (
        {"model": "", "prompt": "p"},
        "model: must be a non-empty string (got '')",
    ),
    # prompt
    "prompt 2501": (body(prompt="x" * 2501), "prompt: must be at most 2500 characters (got 2501)"),
    "prompt number": (body(prompt=5), "prompt: must be a string (got 5)"),
    "prompt missing": (
        body(prompt=DROP),
        "prompt: required and must not be empty when multi_shot is false",
    ),
    "prompt blank": (
        body(prompt="  "),
        "prompt: required and must not be empty when multi_shot is false",
    ),
    "prompt null": (
        body(prompt=None),
        "prompt: required and must not be empty when multi_shot is false",
    ),
    "negative 2501": (
        body(negative_prompt="n" * 2501),
        "negative_prompt: must be at most 2500 characters (got 2501)",
    ),
    "negative list": (body(negative_prompt=["x"]), "negative_prompt: must be a string (got array)"),
    # mode
    "mode unknown": (
        body(mode="ultra"),
        f"mode: 'ultra' is not allowed {MODEL} (allowed: std, pro)",
    ),
    "mode number": (body(mode=1), "mode: must be a string (got 1)"),
    "mode 4k on v3 default": (
        body("kling-v3", mode="4k"),
        "mode: '4k' is not allowed for model kling-v3 (allowed: std, pro)",
    ),
    "mode 4k on no-mode model": (
        body("kling-v2-master", mode="4k"),
        "mode: must be one of std, pro (got '4k')",
    ),
    # aspect ratio
    "aspect 4:3": (
        body(aspect_ratio="4:3"),
        "aspect_ratio: must be one of 16:9, 9:16, 1:1 (got '4:3')",
    ),
    "aspect number": (
        body(aspect_ratio=1),
        "aspect_ratio: must be a string, one of 16:9, 9:16, 1:1 (got 1)",
    ),
    # duration types
    "duration 5.5": (
        body(duration=5.5),
        "duration: must be a whole number of seconds, as an integer or a string",
    ),
    "duration 5.0": (
        body(duration=5.0),
        "duration: must be a whole number of seconds, as an integer or a string",
    ),
    "duration '5.0'": (body(duration="5.0"), "duration: must be a whole number of seconds"),
    "duration 'abc'": (body(duration="abc"), "duration: must be a whole number of seconds"),
    "duration ' 5'": (body(duration=" 5"), "duration: must be a whole number of seconds"),
    "duration ''": (body(duration=""), "duration: must be a whole number of seconds"),
    "duration '-5'": (body(duration="-5"), "duration: must be a whole number of seconds"),
    "duration bool": (
        body(duration=True),
        "duration: must be a whole number of seconds, as an integer or a string like '5' "
        "(got boolean)",
    ),
    "duration fullwidth digit": (
        body(duration="５"),
        "duration: must be a whole number of seconds",
    ),
    "duration huge string": (body(duration="9" * 5000), "duration: out of range (got '9999999999"),
    "duration huge int": (
        body(duration=10**5000),
        "duration: out of range (got a very large number)",
    ),
    "duration 7 digits": (body(duration="1000000"), "duration: out of range (got '1000000')"),
    "duration 6 digits": (
        body(duration="999999"),
        "duration: '999999' is not allowed for model kling-v1",
    ),
    # sound
    "sound yes": (body("kling-v3", sound="yes"), "sound: must be one of on, off (got 'yes')"),
    "sound true": (
        body("kling-v3", sound=True),
        "sound: must be a string, one of on, off (got boolean)",
    ),
    "sound on v1": (body(sound="on"), "sound: 'on' is not supported for model kling-v1"),
    "sound on v2-6 std": (
        body("kling-v2-6", sound="on"),
        "sound: 'on' needs mode 'pro' for model kling-v2-6 (got mode 'std')",
    ),
    # cfg_scale
    "cfg -0.01": (body(cfg_scale=-0.01), "cfg_scale: must be between 0 and 1 (got -0.01)"),
    "cfg 1.01": (body(cfg_scale=1.01), "cfg_scale: must be between 0 and 1 (got 1.01)"),
    "cfg 2": (body(cfg_scale=2), "cfg_scale: must be between 0 and 1 (got 2)"),
    "cfg nan": (body(cfg_scale=math.nan), "cfg_scale: must be between 0 and 1 (got nan)"),
    "cfg bool": (body(cfg_scale=True), "cfg_scale: must be a number (got boolean)"),
    "cfg string": (body(cfg_scale="0.5"), "cfg_scale: must be a number (got '0.5')"),
    "cfg on v2-6": (
        body("kling-v2-6", cfg_scale=0.5),
        "cfg_scale: not supported for model kling-v2-6",
    ),
    "cfg on v3": (body("kling-v3", cfg_scale=0), "cfg_scale: not supported for model kling-v3"),
    # multi_shot / shot_type
    "multi_shot string": (
        body("kling-v3", multi_shot="true"),
        "multi_shot: must be true or false (got 'true')",
    ),
    "multi_shot 1": (body("kling-v3", multi_shot=1), "multi_shot: must be true or false (got 1)"),
    "multi_shot on v2-6": (
        body("kling-v2-6", multi_shot=True, shot_type="intelligence"),
        "multi_shot: true is not supported for model kling-v2-6",
    ),
    "shot_type missing": (
        body("kling-v3", multi_shot=True),
        "shot_type: required when multi_shot is true",
    ),
    "shot_type bad": (
        body("kling-v3", multi_shot=True, shot_type="auto"),
        "shot_type: must be one of customize, intelligence (got 'auto')",
    ),
    "intelligence without prompt": (
        body("kling-v3", multi_shot=True, shot_type="intelligence", prompt=""),
        "prompt: required and must not be empty when shot_type is intelligence",
    ),
    # multi_prompt
    "multi_prompt missing": (
        body("kling-v3", multi_shot=True, shot_type="customize"),
        "multi_prompt: required when multi_shot is true and shot_type is customize",
    ),
    "multi_prompt object": (
        v3_custom("5", {"index": 1}),
        "multi_prompt: must be an array of shots (got object)",
    ),
    "0 shots": (v3_custom("5", []), "multi_prompt: must hold 1 to 6 shots (got 0)"),
    "7 shots": (
        v3_custom("7", shots(1, 1, 1, 1, 1, 1, 1)),
        "multi_prompt: must hold 1 to 6 shots (got 7)",
    ),
    "shot not object": (
        v3_custom("5", ["x"]),
        "multi_prompt[0]: must be an object with index, prompt and duration",
    ),
    "shot index missing": (
        v3_custom("5", [{"prompt": "p", "duration": "5"}]),
        "multi_prompt[0].index: required",
    ),
    "shot index bool": (
        v3_custom("5", [{"index": True, "prompt": "p", "duration": "5"}]),
        "multi_prompt[0].index: must be an integer (got boolean)",
    ),
    "shot index string": (
        v3_custom("5", [{"index": "1", "prompt": "p", "duration": "5"}]),
        "multi_prompt[0].index: must be an integer (got '1')",
    ),
    "shot index duplicate": (
        v3_custom(
            "5",
            [
                {"index": 1, "prompt": "p", "duration": 2},
                {"index": 1, "prompt": "p", "duration": 3},
            ],
        ),
        "multi_prompt[1].index: 1 is used by an earlier shot; indexes must be unique",
    ),
    "shot prompt 513": (
        v3_custom("5", shots("5", prompt="s" * 513)),
        "multi_prompt[0].prompt: must be at most 512 characters (got 513)",
    ),
    "shot prompt empty": (
        v3_custom("5", shots("5", prompt=" ")),
        "multi_prompt[0].prompt: must not be empty",
    ),
    "shot prompt missing": (
        v3_custom("5", [{"index": 1, "duration": "5"}]),
        "multi_prompt[0].prompt: required",
    ),
    "shot duration 0": (
        v3_custom("5", shots("5", "0")),
        "multi_prompt[1].duration: must be at least 1 (got 0)",
    ),
    "shot duration -1": (
        v3_custom("5", shots(-1, 6)),
        "multi_prompt[0].duration: must be at least 1 (got -1)",
    ),
    "shot duration over total": (
        v3_custom("5", shots(6)),
        "multi_prompt[0].duration: must be at most the total duration 5 (got 6)",
    ),
    "shot duration float": (
        v3_custom("5", shots(2.5, 2.5)),
        "multi_prompt[0].duration: must be a whole number",
    ),
    "shot duration missing": (
        v3_custom("5", [{"index": 1, "prompt": "p"}]),
        "multi_prompt[0].duration: required",
    ),
    "shots sum short": (
        v3_custom("10", shots("4", "3", "2")),
        "multi_prompt: shot durations must add up to duration 10 (got 9)",
    ),
    # voice_list
    "3 voices": (
        body("kling-v3", voice_list=[{"voice_id": "a"}] * 3),
        "voice_list: must hold at most 2 voices (got 3)",
    ),
    "voice_list object": (
        body("kling-v3", voice_list={"voice_id": "a"}),
        "voice_list: must be an array of voices",
    ),
    "voice not object": (
        body("kling-v3", voice_list=["a"]),
        "voice_list[0]: must be an object with a voice_id",
    ),
    "voice_id empty": (
        body("kling-v3", voice_list=[{"voice_id": "a"}, {"voice_id": ""}]),
        "voice_list[1].voice_id: must be a non-empty string (got '')",
    ),
    "voice_id missing": (
        body("kling-v3", voice_list=[{}]),
        "voice_list[0].voice_id: must be a non-empty string",
    ),
    "voice_list on v1": (
        body(voice_list=[{"voice_id": "a"}]),
        "voice_list: not supported for model kling-v1",
    ),
    "voice ref beyond list": (
        body("kling-v3", voice_list=[{"voice_id": "a"}], sound="on", prompt="x<<<voice_2>>>"),
        "prompt: <<<voice_2>>> refers to a voice that is not in voice_list (voice_list has 1;",
    ),
    "voice ref 0": (
        body("kling-v3", voice_list=[{"voice_id": "a"}], sound="on", prompt="x<<<voice_0>>>"),
        "prompt: <<<voice_0>>> refers to a voice that is not in voice_list",
    ),
    "voice ref without list": (
        body("kling-v3", sound="on", prompt="x<<<voice_1>>>"),
        "prompt: <<<voice_1>>> refers to a voice",
    ),
    "voice ref with sound off": (
        body("kling-v3", voice_list=[{"voice_id": "a"}], prompt="x<<<voice_1>>>"),
        "sound: must be 'on' when prompt references a voice (<<<voice_1>>>)",
    ),
    "voices without sound": (
        body("kling-v2-6", voice_list=[{"voice_id": "a"}]),
        "voice_list: a non-empty voice_list requires sound 'on' (sound is absent)",
    ),
    "voices with sound off": (
        body("kling-v3", voice_list=[{"voice_id": "a"}], sound="off"),
        "voice_list: a non-empty voice_list requires sound 'on' (got sound 'off')",
    ),
    "voices in a storyboard without sound": (
        v3_custom("5", shots("5"), voice_list=[{"voice_id": "a"}]),
        "voice_list: a non-empty voice_list requires sound 'on'",
    ),
    "voice ref in shot beyond list": (
        v3_custom(
            "5", shots("5", prompt="<<<voice_3>>> hi"), voice_list=[{"voice_id": "a"}], sound="on"
        ),
        "multi_prompt[0].prompt: <<<voice_3>>> refers to a voice",
    ),
    # camera_control
    "camera 10.01": (
        body(camera_control=camera(zoom=10.01)),
        "camera_control.config.zoom: must be between -10 and 10 (got 10.01)",
    ),
    "camera -10.01": (
        body(camera_control=camera(roll=-10.01)),
        "camera_control.config.roll: must be between -10 and 10 (got -10.01)",
    ),
    "camera two axes": (
        body(camera_control=camera(pan=1, zoom=2)),
        "camera_control.config: exactly one of horizontal, vertical, pan, tilt, roll, zoom "
        "must be non-zero for type simple (got pan, zoom)",
    ),
    "camera no axis": (body(camera_control=camera(pan=0)), "camera_control.config: exactly one of"),
    "camera empty config": (body(camera_control=camera()), "camera_control.config: exactly one of"),
    "camera unknown key": (
        body(camera_control=camera(spin=1)),
        "camera_control.config.spin: unknown key (allowed:",
    ),
    "camera bool value": (
        body(camera_control=camera(pan=True)),
        "camera_control.config.pan: must be a number (got boolean)",
    ),
    "camera null value": (
        body(camera_control=camera(pan=None, zoom=1)),
        "camera_control.config.pan: must be a number (got null)",
    ),
    "camera simple no config": (
        body(camera_control={"type": "simple"}),
        "camera_control.config: required when type is simple",
    ),
    "camera config list": (
        body(camera_control={"type": "simple", "config": []}),
        "camera_control.config: must be an object (got array)",
    ),
    "camera preset with config": (
        body(camera_control={"type": "forward_up", "config": {"zoom": 1}}),
        "camera_control.config: must be empty or absent when type is forward_up (a preset move)",
    ),
    "camera type missing": (
        body(camera_control={"config": {"zoom": 1}}),
        "camera_control.type: required",
    ),
    "camera type bad": (
        body(camera_control={"type": "orbit"}),
        "camera_control.type: must be one of simple, ",
    ),
    "camera not object": (
        body(camera_control="simple"),
        "camera_control: must be an object (got 'simple')",
    ),
    "camera on pro": (
        body(mode="pro", camera_control=camera(zoom=1)),
        "camera_control: needs mode std for model kling-v1 (got mode 'pro')",
    ),
    "camera at 10s": (
        body(duration="10", camera_control=camera(zoom=1)),
        "camera_control: needs duration 5 for model kling-v1 (got 10)",
    ),
    "camera on v1-6": (
        body("kling-v1-6", camera_control=camera(zoom=1)),
        "camera_control: not supported for model kling-v1-6",
    ),
    # watermark_info
    "watermark bool": (body(watermark_info=True), "watermark_info: must be an object like"),
    "watermark enabled string": (
        body(watermark_info={"enabled": "yes"}),
        "watermark_info.enabled: must be true or false (got 'yes')",
    ),
    "watermark enabled missing": (
        body(watermark_info={}),
        "watermark_info.enabled: must be true or false (got null)",
    ),
    # callback_url
    "callback 2049": (
        body(callback_url="https://example.com/" + "a" * (2049 - 20)),
        "callback_url: must be at most 2048 characters (got 2049)",
    ),
    "callback ftp": (
        body(callback_url="ftp://example.com/x"),
        "callback_url: must be an http or https URL (got scheme 'ftp')",
    ),
    "callback relative": (
        body(callback_url="/cb"),
        "callback_url: must be an http or https URL (got scheme '')",
    ),
    "callback no host": (body(callback_url="https:///cb"), "callback_url: must include a host"),
    "callback space": (
        body(callback_url="https://exa mple.com/"),
        "callback_url: must not contain spaces or control",
    ),
    "callback newline": (
        body(callback_url="https://example.com/\n"),
        "callback_url: must not contain spaces or",
    ),
    "callback bad ipv6": (body(callback_url="http://[::1/cb"), "callback_url: is not a valid URL"),
    "callback bad port": (
        body(callback_url="http://example.com:99999/"),
        "callback_url: is not a valid URL",
    ),
    "callback number": (body(callback_url=1), "callback_url: must be a string (got 1)"),
    # external_task_id
    "external id 65": (
        body(external_task_id="e" * 65),
        "external_task_id: must be at most 64 characters (got 65)",
    ),
    "external id empty": (body(external_task_id=""), "external_task_id: must not be empty"),
    "external id number": (body(external_task_id=7), "external_task_id: must be a string (got 7)"),
}


@pytest.mark.parametrize(("data", "expected"), REJECTED.values(), ids=REJECTED.keys())
def test_rejected_with_field_and_rule_named(data: Any, expected: str) -> None:
    assert rejection(data).startswith(expected)


# ---------------------------------------------------------------- durations per model, both sides

DURATION_CASES = [
    (model, seconds, seconds in DEFAULT_CAPABILITIES[model].durations)
    for model in DEFAULT_CAPABILITIES.names()
    for seconds in (2, 3, 4, 5, 9, 10, 11, 15, 16)
]


@pytest.mark.parametrize("as_string", [True, False])
@pytest.mark.parametrize(("model", "seconds", "allowed"), DURATION_CASES)
def test_duration_per_model(model: str, seconds: int, allowed: bool, as_string: bool) -> None:
    data = body(model, duration=str(seconds) if as_string else seconds)
    if allowed:
        result = validate(data)
        assert result.duration == seconds
        assert result.upstream_body["duration"] == str(seconds)
    else:
        listed = ", ".join(str(d) for d in sorted(DEFAULT_CAPABILITIES[model].durations))
        assert (
            rejection(data)
            == f"duration: '{seconds}' is not allowed for model {model} (allowed: {listed})"
        )


def test_duration_message_matches_the_documented_example() -> None:
    assert rejection(body("kling-v2-6", duration="12")) == (
        "duration: '12' is not allowed for model kling-v2-6 (allowed: 5, 10)"
    )


# ------------------------------------------------------------- normalisation and the forwarded body


def test_defaults_and_int_duration_normalised() -> None:
    result = validate({"model_name": "kling-v1", "prompt": "p", "duration": 10})
    assert result == Text2VideoRequest(
        model_name="kling-v1",
        mode="std",
        duration=10,
        sound=False,
        multi_shot=False,
        voice_control=False,
        aspect_ratio="16:9",
        watermark=False,
        external_task_id=None,
        callback_url=None,
        upstream_body={"model_name": "up-kling-v1", "prompt": "p", "duration": "10", "mode": "std"},
    )


def test_absent_model_defaults_to_kling_v1() -> None:
    assert extract_model_name({"prompt": "p"}) == "kling-v1"
    assert validate({"prompt": "p"}).model_name == "kling-v1"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"model": "kling-v3", "prompt": "p"}, "kling-v3"),
        ({"model_name": "kling-v2-6", "model": "kling-v3", "prompt": "p"}, "kling-v2-6"),
        ({"model_name": None, "model": "kling-v3", "prompt": "p"}, "kling-v3"),
    ],
)
def test_legacy_model_field_is_used_then_removed(data: dict[str, Any], expected: str) -> None:
    assert extract_model_name(data) == expected
    result = validate(data)
    assert result.model_name == expected
    assert "model" not in result.upstream_body
    assert result.upstream_body["model_name"] == "up-" + expected


def test_model_without_mode_choice_drops_mode_and_reports_std() -> None:
    result = validate(body("kling-v2-1-master", mode="pro"))
    assert result.mode == "std"
    assert "mode" not in result.upstream_body


def test_sound_and_watermark_and_ids_are_reported() -> None:
    result = validate(
        body(
            "kling-v2-6",
            mode="pro",
            sound="on",
            watermark_info={"enabled": True},
            callback_url="https://cb.example/x",
            external_task_id="ext-1",
        )
    )
    assert (result.sound, result.watermark, result.mode) == (True, True, "pro")
    assert (result.callback_url, result.external_task_id) == ("https://cb.example/x", "ext-1")
    assert "callback_url" not in result.upstream_body
    assert "external_task_id" not in result.upstream_body
    assert result.upstream_body["sound"] == "on"
    assert result.upstream_body["watermark_info"] == {"enabled": True}


def test_null_known_fields_are_not_forwarded_but_unknown_fields_are() -> None:
    result = validate(body(negative_prompt=None, sound=None, seed=42, extra=None))
    assert "negative_prompt" not in result.upstream_body
    assert "sound" not in result.upstream_body
    assert result.upstream_body["seed"] == 42
    assert result.upstream_body["extra"] is None


def test_strict_rejects_unknown_fields_before_anything_else() -> None:
    assert rejection(body(seed=42, prompt=5), strict=True) == "seed: unknown field"
    assert rejection(body(**{"x" * 500: 1}), strict=True) == "x" * 64 + "…: unknown field"
    assert validate(body(mode="pro"), strict=True).mode == "pro"


def test_multi_shot_false_drops_storyboard_fields() -> None:
    result = validate(
        body("kling-v3", multi_shot=False, shot_type="customize", multi_prompt="junk")
    )
    assert result.multi_shot is False
    assert "shot_type" not in result.upstream_body
    assert "multi_prompt" not in result.upstream_body
    assert result.upstream_body["multi_shot"] is False


def test_intelligence_drops_multi_prompt() -> None:
    result = validate(body("kling-v3", multi_shot=True, shot_type="intelligence", multi_prompt=[1]))
    assert result.multi_shot is True
    assert "multi_prompt" not in result.upstream_body


def test_customize_normalises_shot_durations_and_keeps_the_empty_prompt() -> None:
    data = v3_custom(10, shots(4, "3", 3), prompt="")
    result = validate(data)
    assert result.multi_shot is True
    assert result.duration == 10
    assert [s["duration"] for s in result.upstream_body["multi_prompt"]] == ["4", "3", "3"]
    assert result.upstream_body["prompt"] == ""
    assert [s["duration"] for s in data["multi_prompt"]] == [4, "3", 3]  # input untouched


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            body(
                "kling-v3",
                voice_list=[{"voice_id": "a"}],
                sound="on",
                prompt="A<<<voice_1>>> says hi",
            ),
            True,
        ),
        (
            body("kling-v3", voice_list=[{"voice_id": "a"}], sound="on", prompt="no reference"),
            False,
        ),
        (body("kling-v3", voice_list=[], prompt="plain"), False),
        (body("kling-v3", prompt="plain"), False),
        (
            v3_custom(
                "5", shots(5, prompt="<<<voice_1>>> hi"), voice_list=[{"voice_id": "a"}], sound="on"
            ),
            True,
        ),
    ],
)
def test_voice_control_flag(data: dict[str, Any], expected: bool) -> None:
    assert validate(data).voice_control is expected


def test_empty_voice_list_is_not_forwarded() -> None:
    assert "voice_list" not in validate(body(voice_list=[])).upstream_body


def test_camera_null_config_is_dropped_from_forwarded_body() -> None:
    result = validate(body(camera_control={"type": "down_back", "config": None}))
    assert result.upstream_body["camera_control"] == {"type": "down_back"}


def test_first_violation_wins_in_a_fixed_order() -> None:
    data = body(prompt="x" * 3000, mode="ultra", duration="99", camera_control=5)
    assert rejection(data).startswith("prompt:")
    data["prompt"] = "ok"
    assert rejection(data).startswith("mode:")


def test_operator_override_enables_4k_on_kling_v3() -> None:
    table = DEFAULT_CAPABILITIES.with_overrides({"kling-v3": {"modes": ["std", "pro", "4k"]}})
    result = validate(body("kling-v3", mode="4k"), table=table)
    assert result.mode == "4k"
    assert result.upstream_body["mode"] == "4k"


@pytest.mark.parametrize(
    ("override", "data", "expected"),
    [
        (
            {"modes": ["pro"]},
            body("acme"),
            "mode: required for model acme, which has no 'std' default",
        ),
        (
            {"durations": [8]},
            body("acme"),
            "duration: the default '5' is not allowed for model acme (allowed: 8)",
        ),
    ],
)
def test_defaults_outside_an_operator_table_are_refused(
    override: dict[str, Any], data: Any, expected: str
) -> None:
    table = DEFAULT_CAPABILITIES.with_overrides({"acme": override})
    assert rejection(data, table=table).startswith(expected)


def test_custom_external_id_limit() -> None:
    assert (
        validate(body(external_task_id="e" * 10), max_external_id_len=10).external_task_id
        == "e" * 10
    )
    assert rejection(body(external_task_id="e" * 11), max_external_id_len=10) == (
        "external_task_id: must be at most 10 characters (got 11)"
    )


def test_long_values_are_cut_in_messages() -> None:
    message = rejection(body(mode="m" * 5000))
    assert len(message) < 200
    assert message.startswith("mode: 'mmmm")


@pytest.mark.parametrize("data", [[], "text", None, 5, [{"prompt": "p"}]])
def test_non_object_body_is_a_bad_request(data: Any) -> None:
    caps = DEFAULT_CAPABILITIES["kling-v1"]
    with pytest.raises(BadRequest) as info:
        validate_text2video(data, caps=caps, upstream_model="kling-v1")
    assert info.value.code == 1200
    assert info.value.message == "request body must be a JSON object"
    with pytest.raises(BadRequest):
        extract_model_name(data)


@pytest.mark.parametrize(
    ("watermark_info", "expected"), [({"enabled": True}, True), ({"enabled": False}, False)]
)
def test_watermark_flag(watermark_info: dict[str, bool], expected: bool) -> None:
    assert validate(body(watermark_info=watermark_info)).watermark is expected
    assert validate(body()).watermark is False
