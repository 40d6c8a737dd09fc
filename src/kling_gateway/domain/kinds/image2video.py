"""``POST /v1/videos/image2video``: first and/or tail frame, masks, camera, sound, voices, elements.

Rules from kling-video-family.md §2; the per-model cells of §2.3 are the table below, which an
operator may override. Fields shared with text2video (multi-shot, voices, camera) reuse its
checks through a text2video-shaped view of this kind's row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kling_gateway.domain._checks import fail, show
from kling_gateway.domain.camera import check_camera_control
from kling_gateway.domain.kinds import common as c
from kling_gateway.domain.kinds.images import FIRST_FRAME, TAIL_FRAME, ImageInput, check_image
from kling_gateway.domain.kinds.masks import check_masks
from kling_gateway.domain.kinds.table import Gate, KindTable, count, durations, flag, gate, modes
from kling_gateway.domain.kinds.table import names as name_set
from kling_gateway.domain.models import ModelCapabilities
from kling_gateway.domain.multishot import check_multi_shot, check_voice_refs, check_voices

KIND = "image2video"
DEFAULT_MODEL = "kling-v1"
KNOWN_FIELDS = frozenset(
    {
        "model_name",
        "image",
        "image_tail",
        "prompt",
        "negative_prompt",
        "cfg_scale",
        "mode",
        "duration",
        "sound",
        "multi_shot",
        "shot_type",
        "multi_prompt",
        "element_list",
        "voice_list",
        "static_mask",
        "dynamic_masks",
        "camera_control",
        *c.ENVELOPE_FIELDS,
    }
)


@dataclass(frozen=True, slots=True)
class Image2VideoCaps:
    name: str
    modes: frozenset[str] | None  # None: no mode choice (a std/pro value is dropped)
    durations: frozenset[int]
    cfg_scale: bool
    tail_frame: Gate | None  # image + image_tail
    tail_only: Gate | None  # image_tail without image
    tail_silent_only: bool  # kling-v2-6: a tail frame only on a silent video
    masks: Gate | None
    camera: Gate | None
    camera_types: frozenset[str]  # empty: every type Kling has
    sound: Gate | None
    voice: Gate | None
    elements: int  # most element_list items; 0: not offered
    multi_shot: bool
    # The 2026 pages require a prompt for single-shot; earlier pages and clients do not (§11.9)
    prompt_required: bool


SCHEMA = {
    "modes": modes(),
    "durations": durations(),
    "cfg_scale": flag(),
    "tail_frame": gate(),
    "tail_only": gate(),
    "tail_silent_only": flag(),
    "masks": gate(),
    "camera": gate(),
    "camera_types": name_set(),
    "sound": gate(),
    "voice": gate(),
    "elements": count(),
    "multi_shot": flag(),
    "prompt_required": flag(),
}
_STD_PRO = ["std", "pro"]
_PRO = {"modes": ["pro"]}
_PRO_5_10 = {"modes": ["pro"], "durations": [5, 10]}
# §2.3. Tail-only on v1-5/v1-6 is from the 2025 map; masks and camera on kling-v3 are "not listed"
# (medium), so off; voice control on kling-v3 is marked unsupported in the maps. Operators can
# switch any cell. 4K on kling-v3 has no known legacy field, so "4k" is not offered.
DEFAULT_TABLE = KindTable(
    KIND,
    Image2VideoCaps,
    SCHEMA,
    {
        "kling-v1": {
            "modes": _STD_PRO,
            "durations": [5, 10],
            "cfg_scale": True,
            "tail_frame": {"durations": [5]},
            "masks": {"durations": [5]},
        },
        "kling-v1-5": {
            "modes": _STD_PRO,
            "durations": [5, 10],
            "cfg_scale": True,
            "tail_frame": _PRO,
            "tail_only": _PRO,
            "masks": {"modes": ["pro"], "durations": [5]},
            "camera": {"modes": ["pro"], "durations": [5]},
            "camera_types": ["simple"],
        },
        "kling-v1-6": {
            "modes": _STD_PRO,
            "durations": [5, 10],
            "cfg_scale": True,
            "tail_frame": _PRO,
            "tail_only": _PRO,
        },
        "kling-v2-master": {"modes": None, "durations": [5, 10]},
        "kling-v2-1": {"modes": _STD_PRO, "durations": [5, 10], "tail_frame": _PRO},
        "kling-v2-1-master": {"modes": None, "durations": [5, 10]},
        "kling-v2-5-turbo": {"modes": _STD_PRO, "durations": [5, 10], "tail_frame": _PRO},
        "kling-v2-6": {
            "modes": _STD_PRO,
            "durations": [5, 10],
            "tail_frame": _PRO,
            "tail_silent_only": True,
            "sound": _PRO,
            "voice": _PRO_5_10,
        },
        "kling-v3": {
            "modes": _STD_PRO,
            "durations": list(range(3, 16)),
            "tail_frame": True,
            "sound": True,
            "elements": 3,
            "multi_shot": True,
        },
    },
)


def validate_image2video(body: Any, ctx: c.Context[Image2VideoCaps]) -> c.KindRequest:
    """Validate ``body`` against the model's row and build the body to forward."""
    out = c.start(body, KNOWN_FIELDS, ctx)
    caps = ctx.caps
    model = c.model_name(body, DEFAULT_MODEL)
    prompt = c.prompt(body)
    c.prompt(body, "negative_prompt")
    mode = c.mode(body.get("mode"), caps.modes, model, out, "std")
    seconds = c.duration(body.get("duration"), caps.durations, model)
    out["duration"] = str(seconds)
    sound = c.switch(body, "sound")
    if sound:
        c.gated("sound", caps.sound, model, mode, seconds)
    c.cfg_scale(body.get("cfg_scale"), caps.cfg_scale, model)

    view = _text2video_view(caps, voice=caps.voice is not None)
    shots = check_multi_shot(body, out, caps=view, model_name=model, duration=seconds)
    if caps.prompt_required and (not shots.enabled or shots.shot_type == "intelligence"):
        c.prompt(body, required="for this model unless multi_shot is customize")

    image, tail = _frames(body, caps, model, mode, seconds, sound=sound)
    if shots.enabled and tail is not None:
        fail("image_tail", "not allowed when multi_shot is true")
    mask_field = "static_mask" if body.get("static_mask") is not None else "dynamic_masks"
    has_masks = mask_field == "static_mask" or bool(body.get("dynamic_masks"))
    camera = body.get("camera_control")
    _exclusive(tail is not None, has_masks, camera is not None)
    if has_masks:
        c.gated(mask_field, caps.masks, model, mode, seconds)
        check_masks(body, image, seconds)
    if camera is not None:
        out["camera_control"] = _camera(camera, caps, model, mode, seconds)

    element_count = c.elements(body, caps.elements, model)
    voice_count = check_voices(body, out, caps=view, model_name=model)
    if voice_count:
        if element_count:
            fail("voice_list", "cannot be combined with element_list")
        c.gated("voice_list", caps.voice, model, mode, seconds)
        if not sound:
            fail("voice_list", f"a non-empty voice_list requires sound 'on' ({_sound(body)})")
    prompts = [(f"multi_prompt[{i}].prompt", p) for i, p in enumerate(shots.shot_prompts)]
    referenced = check_voice_refs(
        [("prompt", prompt), *prompts], voice_count=voice_count, sound=sound
    )

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
        voice_control=referenced and voice_count > 0,
    )


def _frames(
    body: dict[str, Any],
    caps: Image2VideoCaps,
    model: str,
    mode: str | None,
    seconds: int,
    *,
    sound: bool,
) -> tuple[ImageInput | None, ImageInput | None]:
    raw_image, raw_tail = body.get("image"), body.get("image_tail")
    if raw_image is None and raw_tail is None:
        fail("image", "required unless image_tail is given (at least one frame)")
    image = None if raw_image is None else check_image("image", raw_image, FIRST_FRAME)
    tail = None if raw_tail is None else check_image("image_tail", raw_tail, TAIL_FRAME)
    if tail is not None and image is None and caps.tail_only is None:
        fail("image", f"required for model {model} (a tail frame alone is not supported)")
    if tail is not None:
        c.gated("image_tail", caps.tail_frame if image else caps.tail_only, model, mode, seconds)
        if sound and caps.tail_silent_only:
            fail("image_tail", f"needs sound 'off' for model {model} (a tail frame is silent)")
    return image, tail


def _exclusive(tail: bool, masks: bool, camera: bool) -> None:
    """Kling: "(image + image_tail) or masks or camera_control", only one of them."""
    present = (
        ("image_tail", tail),
        ("static_mask/dynamic_masks", masks),
        ("camera_control", camera),
    )
    given = [name for name, on in present if on]
    if len(given) > 1:
        fail(
            given[1],
            f"cannot be combined with {given[0]} "
            "(use only one of image_tail, static_mask/dynamic_masks and camera_control)",
        )


def _camera(
    raw: object, caps: Image2VideoCaps, model: str, mode: str | None, seconds: int
) -> dict[str, Any]:
    c.gated("camera_control", caps.camera, model, mode, seconds)
    view = _text2video_view(caps, voice=False)
    checked = check_camera_control(
        raw, caps=view, model_name=model, mode=mode or "std", duration=seconds
    )
    move = checked.get("type")
    if caps.camera_types and move not in caps.camera_types:
        allowed = ", ".join(sorted(caps.camera_types))
        fail(
            "camera_control.type",
            f"{show(move)} is not supported for model {model} (allowed: {allowed})",
        )
    return checked


def _sound(body: dict[str, Any]) -> str:
    raw = body.get("sound")
    return "sound is absent" if raw is None else f"got sound {show(raw)}"


def _text2video_view(caps: Image2VideoCaps, *, voice: bool) -> ModelCapabilities:
    """The row seen as text2video's, for the shared multi-shot, voice and camera checks; the
    gates that depend on mode and duration are applied here, not through the view."""
    return ModelCapabilities(
        name=caps.name,
        modes=caps.modes,
        durations=caps.durations,
        sound=caps.sound is not None,
        sound_requires_pro=False,
        multi_shot=caps.multi_shot,
        cfg_scale=caps.cfg_scale,
        camera_control=caps.camera is not None,
        camera_modes=None,
        camera_durations=None,
        voice_control=voice,
    )
