"""Kling's own create-body checks (kling-api.md §3), written independently of the
gateway's domain model.

The simulator exists partly to catch a gateway that forwards something Kling would reject, so these
rules are deliberately re-derived from the reference rather than imported. Where the sources
disagree (camera-control model support, voice control per model) the simulator is lenient: it must
never reject what the real service might accept.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .envelope import SimFailure

MODELS = frozenset(
    {
        "kling-v1",
        "kling-v1-6",
        "kling-v2-master",
        "kling-v2-1-master",
        "kling-v2-5-turbo",
        "kling-v2-6",
        "kling-v3",
    }
)
_CLASSIC_DURATIONS = frozenset({"5", "10"})
_V3_DURATIONS = frozenset(str(n) for n in range(3, 16))
_SOUND_MODELS = frozenset({"kling-v2-6", "kling-v3"})
_ASPECT_RATIOS = frozenset({"16:9", "9:16", "1:1"})
_CAMERA_TYPES = frozenset(
    {"simple", "down_back", "forward_up", "right_turn_forward", "left_turn_forward"}
)
_CAMERA_AXES = ("horizontal", "vertical", "pan", "tilt", "roll", "zoom")
MAX_PROMPT = 2500
MAX_SHOT_PROMPT = 512

# Units per generated second; sound doubles nothing on the wire but costs 1.5x (kling-api.md §7
# gives v3 std 0.6/pro 0.8 silent, 0.9/1.2 with audio — rounded here to 0.5/0.8 so a 5 s std clip
# costs the "2.5" seen in the docs' examples).
UNITS_PER_SECOND = {"std": 0.5, "pro": 0.8, "4k": 1.6}
SOUND_MULTIPLIER = 1.5


@dataclass(slots=True, frozen=True)
class CreateSpec:
    model: str
    mode: str
    duration: int
    sound: bool
    watermark: bool
    external_task_id: str | None
    callback_url: str | None

    @property
    def units(self) -> str:
        amount = (
            UNITS_PER_SECOND[self.mode] * self.duration * (SOUND_MULTIPLIER if self.sound else 1.0)
        )
        return format(round(amount, 3), "g")


def _bad(message: str) -> SimFailure:
    return SimFailure(1201, message)


def _opt_str(body: dict[str, Any], name: str, max_len: int | None = None) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _bad(f"{name} must be a string")
    if max_len is not None and len(value) > max_len:
        raise _bad(f"{name} must be at most {max_len} characters")
    return value


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _enum(body: dict[str, Any], name: str, allowed: frozenset[str], default: str) -> str:
    value = _opt_str(body, name)
    if value is None:
        return default
    if value not in allowed:
        raise _bad(f"{name} value '{value}' is invalid; allowed: {', '.join(sorted(allowed))}")
    return value


def _check_camera(value: Any) -> None:
    if not isinstance(value, dict):
        raise _bad("camera_control must be an object")
    kind = value.get("type")
    if kind not in _CAMERA_TYPES:
        raise _bad(f"camera_control.type value '{kind}' is invalid")
    config = value.get("config")
    if kind != "simple":
        if config:
            raise _bad(f"camera_control.config must be empty when camera_control.type is {kind}")
        return
    if not isinstance(config, dict):
        raise _bad("camera_control.config is required when camera_control.type is simple")
    non_zero = 0
    for axis in _CAMERA_AXES:
        amount = config.get(axis, 0)
        if not _number(amount) or not -10 <= amount <= 10:
            raise _bad(f"camera_control.config.{axis} must be a number in [-10, 10]")
        non_zero += amount != 0
    if non_zero != 1:
        raise _bad("camera_control.config must have exactly one non-zero value when type is simple")


def _check_multi_prompt(value: Any, total: int) -> None:
    if not isinstance(value, list) or not 1 <= len(value) <= 6:
        raise _bad("multi_prompt must be an array of 1 to 6 shots when shot_type is customize")
    seconds = 0
    for i, shot in enumerate(value):
        where = f"multi_prompt[{i}]"
        if not isinstance(shot, dict):
            raise _bad(f"{where} must be an object")
        index, prompt, duration = shot.get("index"), shot.get("prompt"), shot.get("duration")
        if not isinstance(index, int) or isinstance(index, bool):
            raise _bad(f"{where}.index must be an integer")
        if not isinstance(prompt, str) or not prompt.strip() or len(prompt) > MAX_SHOT_PROMPT:
            raise _bad(
                f"{where}.prompt must be a non-empty string of at most {MAX_SHOT_PROMPT} characters"
            )
        if (
            not isinstance(duration, str)
            or not duration.isdigit()
            or not 1 <= int(duration) <= total
        ):
            raise _bad(f"{where}.duration must be a string of whole seconds between 1 and {total}")
        seconds += int(duration)
    if seconds != total:
        raise _bad(f"multi_prompt durations add up to {seconds}, but duration is {total}")


def validate_create(body: Any, *, allow_4k: bool = True) -> CreateSpec:
    if not isinstance(body, dict):
        raise SimFailure(1200, "request body must be a JSON object")
    model = body.get("model_name")
    if model is None or model == "":
        # `model` (the old field name) is documented to act like an empty model_name
        model = "kling-v1"
    if not isinstance(model, str) or model not in MODELS:
        raise _bad(f"model_name value '{model}' is invalid")
    is_v3 = model == "kling-v3"

    modes = frozenset({"std", "pro", "4k"} if is_v3 and allow_4k else {"std", "pro"})
    mode = _enum(body, "mode", modes, "std")
    duration_text = _enum(body, "duration", _V3_DURATIONS if is_v3 else _CLASSIC_DURATIONS, "5")
    _enum(body, "aspect_ratio", _ASPECT_RATIOS, "16:9")
    sound = _enum(body, "sound", frozenset({"on", "off"}), "off") == "on"
    if sound and model not in _SOUND_MODELS:
        raise _bad(f"sound 'on' is not supported by model {model}")
    if sound and model == "kling-v2-6" and mode != "pro":
        raise _bad("sound 'on' requires mode 'pro' on kling-v2-6")

    multi_shot = body.get("multi_shot", False)
    if not isinstance(multi_shot, bool):
        raise _bad("multi_shot must be a boolean")
    if multi_shot and not is_v3:
        raise _bad(f"multi_shot is not supported by model {model}")
    customize = False
    if multi_shot:
        shot_type = body.get("shot_type")
        if shot_type not in ("customize", "intelligence"):
            raise _bad("shot_type must be 'customize' or 'intelligence' when multi_shot is true")
        customize = shot_type == "customize"
        if customize:
            _check_multi_prompt(body.get("multi_prompt"), int(duration_text))

    prompt = _opt_str(body, "prompt", MAX_PROMPT)
    if not customize and (prompt is None or not prompt.strip()):
        raise _bad("prompt is required")
    _opt_str(body, "negative_prompt", MAX_PROMPT)

    cfg_scale = body.get("cfg_scale")
    if cfg_scale is not None and (not _number(cfg_scale) or not 0 <= cfg_scale <= 1):
        raise _bad("cfg_scale must be a number in [0, 1]")
    if body.get("camera_control") is not None:
        _check_camera(body["camera_control"])

    voices = body.get("voice_list")
    if voices is not None:
        if not isinstance(voices, list) or len(voices) > 2:
            raise _bad("voice_list must be an array of at most 2 voices")
        for i, voice in enumerate(voices):
            if (
                not isinstance(voice, dict)
                or not isinstance(voice.get("voice_id"), str)
                or not voice["voice_id"]
            ):
                raise _bad(f"voice_list[{i}].voice_id must be a non-empty string")
        if voices and not sound:
            raise _bad("sound must be 'on' when voice_list is given")

    watermark = body.get("watermark_info")
    enabled = False
    if watermark is not None:
        if not isinstance(watermark, dict) or not isinstance(watermark.get("enabled", False), bool):
            raise _bad("watermark_info must be an object with a boolean 'enabled'")
        enabled = bool(watermark.get("enabled", False))

    callback_url = _opt_str(body, "callback_url") or None
    if callback_url is not None and not callback_url.startswith(("http://", "https://")):
        raise _bad("callback_url must be an http(s) URL")
    external_task_id = _opt_str(body, "external_task_id") or None
    return CreateSpec(
        model, mode, int(duration_text), sound, enabled, external_task_id, callback_url
    )
