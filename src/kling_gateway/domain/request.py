"""Parse and validate a legacy ``POST /v1/videos/text2video`` body, and build the body to forward.

Why validate at all when Kling validates too: a rejected body should cost the client
one fast local 400 instead of a round trip, the gateway must know the billed facts
(mode, duration, sound, voice) before it reserves money, and a field Kling calls
"invalid" in some combination must not be forwarded by accident.

Pure (no I/O, no clock) and cheap: this runs on every create request. Rules come from kling-api.md
§3; checks run in a fixed order and the first violation is raised as InvalidParameter (1201) whose
message starts with the field path, so the same bad body always gets the same answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from kling_gateway.domain._checks import fail, label, one_of, parse_seconds, show, text
from kling_gateway.domain.camera import check_camera_control
from kling_gateway.domain.models import DEFAULT_MODEL, ModelCapabilities, sorted_modes
from kling_gateway.domain.multishot import check_multi_shot, check_voice_refs, check_voices
from kling_gateway.domain.shape import check_body_shape
from kling_gateway.errors import BadRequest

KNOWN_FIELDS = frozenset(
    {
        "model_name",
        "model",
        "prompt",
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
    }
)
ASPECT_RATIOS = ("16:9", "9:16", "1:1")
SOUND_VALUES = ("on", "off")
# still accepted (then dropped) for models that have no mode choice
NO_CHOICE_MODES = ("std", "pro")
MAX_PROMPT = 2500
MAX_CALLBACK_URL = 2048
DEFAULT_MODE = "std"
DEFAULT_DURATION = 5
DEFAULT_ASPECT_RATIO = "16:9"

# Fields the gateway owns towards Kling: it sets its own callback and external id,
# never the client's.
_GATEWAY_OWNED = ("callback_url", "external_task_id")


@dataclass(frozen=True, slots=True)
class Text2VideoRequest:
    """The billed facts of one validated request plus the exact body to forward to Kling."""

    model_name: str  # as the client sent it (the public name), for task records and messages
    mode: str
    duration: int
    sound: bool
    multi_shot: bool
    # a voice in voice_list is referenced from a prompt: "with specified voice" pricing
    voice_control: bool
    aspect_ratio: str
    watermark: bool
    external_task_id: str | None
    callback_url: str | None
    # Shallow copy: nested objects the gateway does not rewrite are shared with the input body.
    upstream_body: dict[str, Any]


def extract_model_name(body: object) -> str:
    """The public model the client asked for: ``model_name``, else legacy ``model``,
    else Kling's default.

    Separate from validation because the caller needs the name first, to look up the capabilities
    and the upstream mapping that validation then takes as input.
    """
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    for key in ("model_name", "model"):
        value = body.get(key)
        if value is None:
            continue
        if not isinstance(value, str) or not value.strip():
            fail(key, f"must be a non-empty string (got {show(value)})")
        return value
    return DEFAULT_MODEL


def validate_text2video(
    body: Any,
    *,
    caps: ModelCapabilities,
    upstream_model: str,
    strict: bool = False,
    max_external_id_len: int = 64,
) -> Text2VideoRequest:
    """Validate ``body`` against ``caps`` and build what to forward with
    ``upstream_model`` as model_name.

    ``strict`` refuses unknown top-level fields; otherwise they are forwarded untouched, so a field
    Kling adds later works through the gateway before the gateway knows about it. ``null`` for a
    known optional field means absent and is not forwarded.
    """
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    check_body_shape(body)  # first: nothing below or downstream may see a deep or NUL body
    if strict:
        for key in body:
            if key not in KNOWN_FIELDS:
                fail(label(key), "unknown field")
    model_name = extract_model_name(body)

    out: dict[str, Any] = {k: v for k, v in body.items() if v is not None or k not in KNOWN_FIELDS}
    out.pop("model", None)
    for key in _GATEWAY_OWNED:
        out.pop(key, None)
    out["model_name"] = upstream_model

    get = body.get
    prompt = get("prompt")
    if prompt is not None:
        text("prompt", prompt, MAX_PROMPT)
    negative = get("negative_prompt")
    if negative is not None:
        text("negative_prompt", negative, MAX_PROMPT)

    mode = _check_mode(get("mode"), caps, model_name, out)

    aspect = get("aspect_ratio")
    aspect_ratio = (
        DEFAULT_ASPECT_RATIO if aspect is None else one_of("aspect_ratio", aspect, ASPECT_RATIOS)
    )

    duration = _check_duration(get("duration"), caps, model_name)
    out["duration"] = str(duration)

    sound_raw = get("sound")
    sound = sound_raw is not None and one_of("sound", sound_raw, SOUND_VALUES) == "on"
    if sound:
        if not caps.sound:
            fail("sound", f"'on' is not supported for model {model_name}")
        if caps.sound_requires_pro and mode != "pro":
            fail("sound", f"'on' needs mode 'pro' for model {model_name} (got mode {mode!r})")

    cfg = get("cfg_scale")
    if cfg is not None:
        _check_cfg_scale(cfg, caps, model_name)

    shots = check_multi_shot(body, out, caps=caps, model_name=model_name, duration=duration)
    prompt_needed = not shots.enabled or shots.shot_type == "intelligence"
    if prompt_needed and (prompt is None or not prompt.strip()):
        when = "multi_shot is false" if not shots.enabled else "shot_type is intelligence"
        fail("prompt", f"required and must not be empty when {when}")

    voice_count = check_voices(body, out, caps=caps, model_name=model_name)
    prompts = [(f"multi_prompt[{i}].prompt", p) for i, p in enumerate(shots.shot_prompts)]
    if prompt is not None:
        prompts.insert(0, ("prompt", prompt))
    referenced = check_voice_refs(prompts, voice_count=voice_count, sound=sound)
    # Kling refuses any voice_list on a silent video, referenced or not
    if voice_count and not sound:
        got = "sound is absent" if sound_raw is None else f"got sound {show(sound_raw)}"
        fail("voice_list", f"a non-empty voice_list requires sound 'on' ({got})")

    camera = get("camera_control")
    if camera is not None:
        out["camera_control"] = check_camera_control(
            camera, caps=caps, model_name=model_name, mode=mode, duration=duration
        )

    watermark = _check_watermark(get("watermark_info"))
    callback_url = _check_callback_url(get("callback_url"))
    external_task_id = _check_external_task_id(get("external_task_id"), max_external_id_len)

    return Text2VideoRequest(
        model_name=model_name,
        mode=mode,
        duration=duration,
        sound=sound,
        multi_shot=shots.enabled,
        voice_control=referenced and voice_count > 0,
        aspect_ratio=aspect_ratio,
        watermark=watermark,
        external_task_id=external_task_id,
        callback_url=callback_url,
        upstream_body=out,
    )


def _check_mode(raw: object, caps: ModelCapabilities, model_name: str, out: dict[str, Any]) -> str:
    """Resolve the mode; it is forwarded explicitly so what Kling renders is what the
    gateway bills."""
    if caps.modes is None:
        # Kling: this model "does not support mode". Tolerate the usual values, but
        # never forward them.
        if raw is not None:
            one_of("mode", raw, NO_CHOICE_MODES)
        out.pop("mode", None)
        return DEFAULT_MODE
    if raw is None:
        if DEFAULT_MODE not in caps.modes:
            allowed = ", ".join(sorted_modes(caps.modes))
            fail(
                "mode",
                f"required for model {model_name}, which has no 'std' default (allowed: {allowed})",
            )
        mode = DEFAULT_MODE
    elif not isinstance(raw, str):
        fail("mode", f"must be a string (got {show(raw)})")
    elif raw not in caps.modes:
        allowed = ", ".join(sorted_modes(caps.modes))
        fail("mode", f"{show(raw)} is not allowed for model {model_name} (allowed: {allowed})")
    else:
        mode = raw
    out["mode"] = mode
    return mode


def _check_duration(raw: object, caps: ModelCapabilities, model_name: str) -> int:
    """Whole seconds, checked against the model's list; the default 5 is checked too (an override
    may leave it out), so an absent duration never reaches Kling as a value the model refuses."""
    duration = DEFAULT_DURATION if raw is None else parse_seconds(raw, "duration")
    if duration not in caps.durations:
        allowed = ", ".join(str(d) for d in sorted(caps.durations))
        what = f"'{duration}'" if raw is not None else f"the default '{duration}'"
        fail("duration", f"{what} is not allowed for model {model_name} (allowed: {allowed})")
    return duration


def _check_cfg_scale(cfg: object, caps: ModelCapabilities, model_name: str) -> None:
    # Kling's docs say v2.x models "do not support this parameter"; refusing beats
    # silently ignoring it.
    if not caps.cfg_scale:
        fail("cfg_scale", f"not supported for model {model_name}")
    if isinstance(cfg, bool) or not isinstance(cfg, int | float):
        fail("cfg_scale", f"must be a number (got {show(cfg)})")
    if not 0 <= cfg <= 1:  # NaN compares false, so it is refused too
        fail("cfg_scale", f"must be between 0 and 1 (got {show(cfg)})")


def _check_watermark(raw: object) -> bool:
    if raw is None:
        return False
    if not isinstance(raw, dict):
        fail("watermark_info", f'must be an object like {{"enabled": true}} (got {show(raw)})')
    enabled = raw.get("enabled")
    if not isinstance(enabled, bool):
        fail("watermark_info.enabled", f"must be true or false (got {show(enabled)})")
    return enabled


def _check_callback_url(raw: object) -> str | None:
    """The gateway will POST to this URL, so only absolute http(s) URLs with a host are taken."""
    if raw is None:
        return None
    url = text("callback_url", raw, MAX_CALLBACK_URL)
    if " " in url or not url.isprintable():
        fail("callback_url", "must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 -- raises ValueError for a non-numeric or out-of-range port
    except ValueError:
        fail("callback_url", "is not a valid URL")
    if parts.scheme not in ("http", "https"):
        fail("callback_url", f"must be an http or https URL (got scheme {show(parts.scheme)})")
    if not host:
        fail("callback_url", "must include a host")
    return url


def _check_external_task_id(raw: object, max_len: int) -> str | None:
    """Kling requires it unique per account and clients query by it, so blank ids are refused."""
    if raw is None:
        return None
    task_id = text("external_task_id", raw, max_len)
    if not task_id.strip():
        fail("external_task_id", "must not be empty")
    return task_id


# The envelope fields every task kind shares (domain/kinds/) take the same rules as text2video.
check_watermark = _check_watermark
check_callback_url = _check_callback_url
check_external_task_id = _check_external_task_id
