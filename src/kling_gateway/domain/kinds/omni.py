"""``POST /v1/videos/omni-video``: images, elements, one video, prompt references, per model.

Rules from kling-video-family.md §4. The counts that sources state differently (O1 durations, the
element matrix, voices) are cells of the table below, so an operator can follow Kling without a
release. Element kinds (video-character or multi-image) are not visible from an id, so the rules
that depend on them are left to Kling.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kling_gateway.domain._checks import fail, one_of
from kling_gateway.domain.kinds import common as c
from kling_gateway.domain.kinds.images import FIRST_FRAME, check_image, check_video_url
from kling_gateway.domain.kinds.refs import check_refs
from kling_gateway.domain.kinds.table import (
    KindTable,
    count,
    durations,
    flag,
    modes,
    opt_count,
    opt_durations,
)
from kling_gateway.domain.models import ModelCapabilities
from kling_gateway.domain.multishot import check_multi_shot, check_voices

KIND = "omni-video"
DEFAULT_MODEL = "kling-video-o1"
DEFAULT_MODE = "pro"  # omni's default, unlike every other kind's std
IMAGE_TYPES = ("first_frame", "end_frame")
REFER_TYPES = ("base", "feature")
YES_NO = ("yes", "no")
ASPECT_RATIOS = ("16:9", "9:16", "1:1")
MAX_VIDEOS = 1
KNOWN_FIELDS = frozenset(
    {
        "model_name",
        "prompt",
        "multi_shot",
        "shot_type",
        "multi_prompt",
        "image_list",
        "element_list",
        "video_list",
        "voice_list",
        "sound",
        "mode",
        "aspect_ratio",
        "duration",
        *c.ENVELOPE_FIELDS,
    }
)


@dataclass(frozen=True, slots=True)
class OmniCaps:
    name: str
    modes: frozenset[str] | None
    durations: frozenset[int]
    # text-only and first-frame-only tasks; None: the same as durations (§4.3, §11.2 disagree)
    plain_durations: frozenset[int] | None
    multi_shot: bool
    sound: bool  # native sound (never with a video)
    voices: int  # most voice_list items; omni pages document none (§4.2), so 0 by default
    end_frame_max_images: int | None  # an end frame only with at most this many images
    first_frame_elements: int  # most elements beside a first frame
    frame_pair_elements: int  # most elements beside a first and an end frame
    media_with_video: int  # images + elements with a reference video
    media_without_video: int  # images + elements without one


SCHEMA = {
    "modes": modes(),
    "durations": durations(),
    "plain_durations": opt_durations(),
    "multi_shot": flag(),
    "sound": flag(),
    "voices": count(),
    "end_frame_max_images": opt_count(),
    "first_frame_elements": count(),
    "frame_pair_elements": count(),
    "media_with_video": count(4),
    "media_without_video": count(7),
}
# §4.2/§4.3. O1 plain durations follow the capability maps and a live error (5, 10), not the FAQ's
# 3–10. Counts are the legacy page's; the June-2026 new-API matrix differs (§11.3).
DEFAULT_TABLE = KindTable(
    KIND,
    OmniCaps,
    SCHEMA,
    {
        "kling-video-o1": {
            "modes": ["std", "pro"],
            "durations": list(range(3, 11)),
            "plain_durations": [5, 10],
            "end_frame_max_images": 2,
            "first_frame_elements": 3,
            "frame_pair_elements": 0,
        },
        "kling-v3-omni": {
            "modes": ["std", "pro"],
            "durations": list(range(3, 16)),
            "multi_shot": True,
            "sound": True,
            "first_frame_elements": 3,
            "frame_pair_elements": 3,
        },
    },
)


@dataclass(frozen=True, slots=True)
class _Media:
    images: int
    refer_images: int  # images without a type: plain references
    first: int | None  # position of the first_frame image
    end: int | None  # position of the end_frame image
    elements: int
    video: str | None  # the video's refer_type


def validate_omni(body: Any, ctx: c.Context[OmniCaps]) -> c.KindRequest:
    out = c.start(body, KNOWN_FIELDS, ctx)
    caps = ctx.caps
    model = c.model_name(body, DEFAULT_MODEL)
    prompt = c.prompt(body)
    mode = c.mode(body.get("mode"), caps.modes, model, out, DEFAULT_MODE)
    media = _media(body, caps)
    _combinations(media, caps, model)

    seconds = _duration(body, out, caps, model, media)
    if seconds is None and body.get("multi_shot") is True:
        fail("multi_shot", "not allowed when video_list holds a 'base' video to edit")
    view = _text2video_view(caps)
    shots = check_multi_shot(body, out, caps=view, model_name=model, duration=seconds or 1)
    if shots.shot_type != "customize" and not prompt.strip():
        fail("prompt", "required and must not be empty unless multi_shot is customize")
    if shots.enabled and (media.first is not None or media.end is not None):
        fail("image_list", "a first_frame or end_frame is not allowed when multi_shot is true")

    sound = c.switch(body, "sound")
    if sound and media.video is not None:
        fail("sound", "must be 'off' when video_list holds a video")
    if sound and not caps.sound:
        fail("sound", f"'on' is not supported for model {model}")
    voice_count = check_voices(body, out, caps=view, model_name=model)
    if voice_count > caps.voices:
        fail("voice_list", f"must hold at most {caps.voices} voices for model {model}")
    if voice_count and not sound:
        fail("voice_list", "a non-empty voice_list requires sound 'on'")
    _aspect(body, out, media)

    prompts = [("prompt", prompt)]
    prompts += [(f"multi_prompt[{i}].prompt", p) for i, p in enumerate(shots.shot_prompts)]
    counts = {
        "image": media.images,
        "element": media.elements,
        "video": 0 if media.video is None else 1,
        "voice": voice_count,
    }
    used = check_refs(prompts, counts)

    env = c.envelope(body, ctx)
    return c.KindRequest(
        kind=KIND,
        model_name=model,
        mode=mode,
        duration=seconds,
        watermark=env.watermark,
        external_task_id=env.external_task_id,
        callback_url=env.callback_url,
        upstream_body=out,
        sound=sound,
        voice_control="voice" in used,
        video_input=media.video is not None,
    )


def _media(body: dict[str, Any], caps: OmniCaps) -> _Media:
    most = max(caps.media_with_video, caps.media_without_video)
    images = c.array("image_list", body.get("image_list"), most, "images")
    first = end = None
    for pos, entry in enumerate(images):
        where = f"image_list[{pos}]"
        entry = c.item(where, entry, "an image_url")
        check_image(f"{where}.image_url", entry.get("image_url"), FIRST_FRAME)
        kind = entry.get("type")
        if kind is None:
            continue
        one_of(f"{where}.type", kind, IMAGE_TYPES)
        if (first if kind == "first_frame" else end) is not None:
            fail(f"{where}.type", f"only one image may be the {kind}")
        if kind == "first_frame":
            first = pos
        else:
            end = pos
    elements = c.elements(body, most, caps.name)
    videos = c.array("video_list", body.get("video_list"), MAX_VIDEOS, "videos")
    refer = _video(videos[0]) if videos else None
    typed = (first is not None) + (end is not None)
    return _Media(len(images), len(images) - typed, first, end, elements, refer)


def _video(raw: object) -> str:
    video = c.item("video_list[0]", raw, "a video_url")
    check_video_url("video_list[0].video_url", video.get("video_url"))
    sound = video.get("keep_original_sound")
    if sound is not None:
        one_of("video_list[0].keep_original_sound", sound, YES_NO)
    refer = video.get("refer_type")
    return "base" if refer is None else one_of("video_list[0].refer_type", refer, REFER_TYPES)


def _combinations(media: _Media, caps: OmniCaps, model: str) -> None:
    if media.end is not None:
        where = f"image_list[{media.end}].type"
        if media.first is None:
            fail(where, "an end_frame needs a first_frame image too")
        most = caps.end_frame_max_images
        if most is not None and media.images > most:
            fail(
                where,
                f"an end_frame allows at most {most} images for model {model} (got {media.images})",
            )
    if media.video == "base" and media.first is not None:
        fail(
            "video_list[0].refer_type",
            "'base' (editing a video) cannot be combined with a first_frame or end_frame image",
        )
    total = media.images + media.elements
    most = caps.media_with_video if media.video is not None else caps.media_without_video
    if total > most:
        field = "element_list" if media.elements else "image_list"
        what = "with" if media.video is not None else "without"
        fail(
            field,
            f"images and elements together must be at most {most} {what} a video (got {total})",
        )
    if media.elements and media.first is not None:
        pair = media.end is not None
        most = caps.frame_pair_elements if pair else caps.first_frame_elements
        frames = "a first and an end frame" if pair else "a first frame"
        if most == 0:
            fail("element_list", f"not supported beside {frames} for model {model}")
        if media.elements > most:
            fail(
                "element_list",
                f"at most {most} elements beside {frames} for model {model} (got {media.elements})",
            )


def _duration(
    body: dict[str, Any], out: dict[str, Any], caps: OmniCaps, model: str, media: _Media
) -> int | None:
    """Seconds to bill up front; None for a base-video edit, whose length is the input's."""
    if media.video == "base":
        out.pop("duration", None)  # Kling ignores it: the output is as long as the input
        return None
    plain = media.video is None and not media.refer_images and not media.elements
    allowed = caps.plain_durations if plain and caps.plain_durations else caps.durations
    seconds = c.duration(body.get("duration"), allowed, model)
    out["duration"] = str(seconds)
    return seconds


def _aspect(body: dict[str, Any], out: dict[str, Any], media: _Media) -> None:
    """Required without a first frame and without a video edit; Kling ignores it otherwise, so it
    is then not forwarded."""
    raw = body.get("aspect_ratio")
    if media.first is not None or media.video == "base":
        out.pop("aspect_ratio", None)
        return
    if raw is None:
        fail("aspect_ratio", "required when there is no first_frame image and no base video")
    one_of("aspect_ratio", raw, ASPECT_RATIOS)


def _text2video_view(caps: OmniCaps) -> ModelCapabilities:
    """The row seen as text2video's, for the shared multi-shot and voice checks."""
    return ModelCapabilities(
        name=caps.name,
        modes=caps.modes,
        durations=caps.durations,
        sound=caps.sound,
        sound_requires_pro=False,
        multi_shot=caps.multi_shot,
        cfg_scale=False,
        camera_control=False,
        camera_modes=None,
        camera_durations=None,
        voice_control=caps.voices > 0,
    )
