"""omni-video validation as tables: lists, combinations, prompt references, per-model cells."""

from __future__ import annotations

from typing import Any

import pytest

from kling_gateway.domain.kinds.common import Context, KindRequest, model_name
from kling_gateway.domain.kinds.omni import DEFAULT_MODEL, DEFAULT_TABLE, OmniCaps, validate_omni
from kling_gateway.domain.kinds.refs import check_refs
from kling_gateway.domain.kinds.table import KindTable
from kling_gateway.errors import InvalidParameter
from tests.domain.kinds.media import DROP, JPEG, PNG, URL, b64, merge, png, refusal

O1, V3 = "kling-video-o1", "kling-v3-omni"
VIDEO = "https://example.com/clip.mp4"


def omni(model: str = O1, /, **fields: Any) -> dict[str, Any]:
    return merge({"model_name": model, "prompt": "a fox", "aspect_ratio": "16:9"}, fields)


def validate(data: Any, table: KindTable[OmniCaps] = DEFAULT_TABLE) -> KindRequest:
    name = model_name(data, DEFAULT_MODEL)
    return validate_omni(data, Context(table[name], upstream_model=name))


def img(kind: str | None = None, image: str = PNG) -> dict[str, Any]:
    return {"image_url": image} if kind is None else {"image_url": image, "type": kind}


def els(count: int) -> list[dict[str, Any]]:
    return [{"element_id": 829836802793406551 + i} for i in range(count)]


def vid(refer: str | None = None, **fields: Any) -> list[dict[str, Any]]:
    video = {"video_url": VIDEO, **fields}
    return [video if refer is None else {**video, "refer_type": refer}]


FRAMES = [img("first_frame"), img("end_frame")]

ACCEPTED: dict[str, dict[str, Any]] = {
    "text only, o1 5 s": omni(),
    "text only, o1 10 s": omni(duration="10"),
    "default model and mode": {"prompt": "p", "aspect_ratio": "1:1"},
    "first frame, no aspect needed": omni(aspect_ratio=DROP, image_list=[img("first_frame")]),
    "first + end on o1": omni(image_list=FRAMES),
    "refer image lets o1 take 3 s": omni(image_list=[img()], duration=3, prompt="<<<image_1>>>"),
    "seven refs without a video": omni(image_list=[img(image=URL)] * 4, element_list=els(3)),
    "feature video + 4 media": omni(
        video_list=vid("feature", keep_original_sound="no"), image_list=[img()] * 4
    ),
    "base video edit, any duration": omni(video_list=vid(), aspect_ratio=DROP, duration=99),
    "v3 first + end + 3 elements": omni(V3, image_list=FRAMES, element_list=els(3)),
    "v3 15 s with sound": omni(V3, duration=15, sound="on"),
    "v3 multi-shot customize, no prompt": omni(
        V3,
        prompt=DROP,
        multi_shot=True,
        shot_type="customize",
        duration=5,
        multi_prompt=[{"index": 1, "prompt": "<<<element_1>>>", "duration": 5}],
        element_list=els(1),
    ),
    "references to every list": omni(
        V3,
        prompt="<<<image_2>>> and <<<element_1>>> in <<<video_1>>>",
        image_list=[img(), img(image=JPEG)],
        element_list=els(1),
        video_list=vid("feature"),
    ),
    "sound off with video": omni(video_list=vid("feature"), sound="off"),
}


@pytest.mark.parametrize("data", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_accepted(data: dict[str, Any]) -> None:
    result = validate(data)
    assert result.kind == "omni-video"
    assert result.upstream_body["mode"] in ("std", "pro")


def test_billed_facts() -> None:
    plain = validate(omni())
    assert (plain.mode, plain.duration, plain.video_input) == ("pro", 5, False)
    edit = validate(omni(video_list=vid("base"), duration=7, image_list=[img()]))
    assert edit.duration is None and edit.video_input
    assert "duration" not in edit.upstream_body
    assert "aspect_ratio" not in edit.upstream_body  # Kling ignores it for an edit
    framed = validate(omni(image_list=[img("first_frame")]))
    assert "aspect_ratio" not in framed.upstream_body
    assert validate(omni(V3, sound="on", duration="12")).sound


REJECTED: dict[str, tuple[Any, str]] = {
    "no prompt": (omni(prompt=DROP), "prompt: required and must not be empty unless multi_shot"),
    "prompt 2501": (omni(prompt="p" * 2501), "prompt: must be at most 2500 characters"),
    "no aspect, text only": (omni(aspect_ratio=DROP), "aspect_ratio: required when there is no"),
    "aspect 4:3": (omni(aspect_ratio="4:3"), "aspect_ratio: must be one of 16:9, 9:16, 1:1"),
    "o1 text-only 3 s": (omni(duration=3), f"duration: '3' is not allowed for model {O1}"),
    "o1 first-frame-only 7 s": (
        omni(image_list=[img("first_frame")], duration=7),
        f"duration: '7' is not allowed for model {O1} (allowed: 5, 10)",
    ),
    "o1 11 s": (omni(image_list=[img()], duration=11), "duration: '11' is not allowed"),
    "v3 16 s": (omni(V3, duration=16), f"duration: '16' is not allowed for model {V3}"),
    "mode 4k": (omni(mode="4k"), f"mode: '4k' is not allowed for model {O1}"),
    "image_list not array": (omni(image_list=img()), "image_list: must be an array of images"),
    "image item string": (omni(image_list=[PNG]), "image_list[0]: must be an object"),
    "image_url missing": (omni(image_list=[{}]), "image_list[0].image_url: must be a string"),
    "image too small": (
        omni(image_list=[img(image=b64(png(200, 300)))]),
        "image_list[0].image_url: width and height must be at least 300 px",
    ),
    "image type bad": (
        omni(image_list=[img("last_frame")]),
        "image_list[0].type: must be one of first_frame, end_frame",
    ),
    "two first frames": (
        omni(image_list=[img("first_frame")] * 2),
        "image_list[1].type: only one image may be the first_frame",
    ),
    "end frame alone": (
        omni(image_list=[img("end_frame")]),
        "image_list[0].type: an end_frame needs a first_frame image too",
    ),
    "o1 end frame with 3 images": (
        omni(image_list=[*FRAMES, img()]),
        f"image_list[1].type: an end_frame allows at most 2 images for model {O1} (got 3)",
    ),
    "base video with first frame": (
        omni(image_list=[img("first_frame")], video_list=vid("base")),
        "video_list[0].refer_type: 'base' (editing a video) cannot be combined",
    ),
    "default refer_type is base": (
        omni(image_list=[img("first_frame")], video_list=vid()),
        "video_list[0].refer_type: 'base'",
    ),
    "eight media without a video": (
        omni(image_list=[img()] * 5, element_list=els(3)),
        "element_list: images and elements together must be at most 7 without a video (got 8)",
    ),
    "eight images": (omni(image_list=[img()] * 8), "image_list: must hold at most 7 images"),
    "five media with a video": (
        omni(image_list=[img()] * 5, video_list=vid("feature")),
        "image_list: images and elements together must be at most 4 with a video (got 5)",
    ),
    "o1 elements beside first + end": (
        omni(image_list=FRAMES, element_list=els(1)),
        f"element_list: not supported beside a first and an end frame for model {O1}",
    ),
    "four elements beside a first frame": (
        omni(V3, image_list=[img("first_frame")], element_list=els(4)),
        f"element_list: at most 3 elements beside a first frame for model {V3} (got 4)",
    ),
    "two videos": (
        omni(video_list=vid() * 2),
        "video_list: must hold at most 1 videos (got 2)",
    ),
    "video base64": (
        omni(video_list=[{"video_url": "AAAA"}]),
        "video_list[0].video_url: must be an http or https URL (Kling takes no base64 video)",
    ),
    "video ftp": (
        omni(video_list=[{"video_url": "ftp://x/y.mp4"}]),
        "video_list[0].video_url: URL must be http or https",
    ),
    "video url missing": (omni(video_list=[{}]), "video_list[0].video_url: required"),
    "video url empty": (
        omni(video_list=[{"video_url": ""}]),
        "video_list[0].video_url: must be a video URL (got '')",
    ),
    "refer_type bad": (
        omni(video_list=vid("style")),
        "video_list[0].refer_type: must be one of base, feature",
    ),
    "keep sound bool": (
        omni(video_list=vid("feature", keep_original_sound=True)),
        "video_list[0].keep_original_sound: must be a string, one of yes, no",
    ),
    "sound with video": (
        omni(V3, video_list=vid("feature"), sound="on"),
        "sound: must be 'off' when video_list holds a video",
    ),
    "sound on o1": (omni(sound="on"), f"sound: 'on' is not supported for model {O1}"),
    "multi-shot on o1": (
        omni(multi_shot=True, shot_type="intelligence"),
        f"multi_shot: true is not supported for model {O1}",
    ),
    "multi-shot with frames": (
        omni(V3, image_list=[img("first_frame")], multi_shot=True, shot_type="intelligence"),
        "image_list: a first_frame or end_frame is not allowed when multi_shot is true",
    ),
    "multi-shot with base edit": (
        omni(V3, video_list=vid("base"), multi_shot=True, shot_type="intelligence"),
        "multi_shot: not allowed when video_list holds a 'base' video to edit",
    ),
    "voices not documented for omni": (
        omni(V3, voice_list=[{"voice_id": "v"}], sound="on"),
        f"voice_list: not supported for model {V3}",
    ),
    "image ref past the list": (
        omni(prompt="<<<image_2>>>", image_list=[img()]),
        "prompt: <<<image_2>>> refers to an item that is not in image_list (image_list has 1;",
    ),
    "image ref without a list": (
        omni(prompt="<<<image_1>>>"),
        "prompt: <<<image_1>>> refers to an item that is not in image_list (image_list has 0;",
    ),
    "image_0": (
        omni(prompt="<<<image_0>>>", image_list=[img()]),
        "prompt: <<<image_0>>> refers to an item that is not in image_list",
    ),
    "element ref past the list": (
        omni(prompt="<<<element_4>>>", element_list=els(3)),
        "prompt: <<<element_4>>> refers to an item that is not in element_list",
    ),
    "video_2": (
        omni(prompt="<<<video_2>>>", video_list=vid("feature")),
        "prompt: <<<video_2>>> refers to an item that is not in video_list (video_list has 1;",
    ),
    "ref in a shot prompt": (
        omni(
            V3,
            multi_shot=True,
            shot_type="customize",
            duration=5,
            multi_prompt=[{"index": 1, "prompt": "<<<image_1>>>", "duration": 5}],
        ),
        "multi_prompt[0].prompt: <<<image_1>>> refers to an item that is not in image_list",
    ),
    "element id float": (
        omni(element_list=[{"element_id": 1.5}]),
        "element_list[0].element_id: must be a positive integer id",
    ),
}


@pytest.mark.parametrize(("data", "expected"), REJECTED.values(), ids=REJECTED.keys())
def test_rejected_with_field_and_rule_named(data: Any, expected: str) -> None:
    assert refusal(validate, data).startswith(expected)


def test_disputed_cells_are_operator_data() -> None:
    """O1 plain durations (§11.2) and omni voices (§4.2): a row changes the answer."""
    table = DEFAULT_TABLE.with_overrides({O1: {"plain_durations": None}, V3: {"voices": 2}})
    validate(omni(duration=3), table)
    voiced = validate(
        omni(V3, voice_list=[{"voice_id": "v"}], sound="on", prompt="<<<voice_1>>>"), table
    )
    assert voiced.voice_control
    message = refusal(lambda d: validate(d, table), omni(V3, voice_list=[{"voice_id": "v"}]))
    assert message == "voice_list: a non-empty voice_list requires sound 'on'"


@pytest.mark.parametrize(
    ("prompt", "counts", "used"),
    [
        ("no refs", {}, frozenset()),
        ("<<<image_1>>><<<voice_2>>>", {"image": 1, "voice": 2}, frozenset({"image", "voice"})),
        ("<<<image_x>>> <<image_9>>", {}, frozenset()),  # not the reference syntax
    ],
)
def test_check_refs(prompt: str, counts: dict[str, int], used: frozenset[str]) -> None:
    assert check_refs([("prompt", prompt)], counts) == used


def test_huge_reference_number_is_out_of_range() -> None:
    with pytest.raises(InvalidParameter, match="image_list has 7"):
        check_refs([("prompt", "<<<image_" + "9" * 5000 + ">>>")], {"image": 7})
