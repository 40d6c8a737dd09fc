"""``camera_control``: Kling's camera-move object (kling-api.md §3.2).

Its rules are structural (one non-zero axis for ``simple``, nothing for the preset moves) and per
model (only some model/mode/duration combinations support it), and Kling's 1201 for a violation
arrives only after a round trip, so they are checked here first.
"""

from __future__ import annotations

from typing import Any

from kling_gateway.domain._checks import fail, is_number, label, one_of, show
from kling_gateway.domain.models import ModelCapabilities, sorted_modes

CAMERA_TYPES = ("simple", "down_back", "forward_up", "right_turn_forward", "left_turn_forward")
CONFIG_KEYS = ("horizontal", "vertical", "pan", "tilt", "roll", "zoom")
_CONFIG_KEY_SET = frozenset(CONFIG_KEYS)
AXIS_LIMIT = 10


def check_camera_control(
    value: object, *, caps: ModelCapabilities, model_name: str, mode: str, duration: int
) -> dict[str, Any]:
    """Validate a non-null ``camera_control`` and return the copy to forward (a null
    ``config`` dropped)."""
    if not caps.camera_control:
        fail("camera_control", f"not supported for model {model_name}")
    if not isinstance(value, dict):
        fail("camera_control", f"must be an object (got {show(value)})")
    raw_type = value.get("type")
    if raw_type is None:
        fail("camera_control.type", "required")
    move = one_of("camera_control.type", raw_type, CAMERA_TYPES)
    config = value.get("config")

    if move == "simple":
        _check_simple_config(config)
    elif config is not None and config != {}:
        fail(
            "camera_control.config", f"must be empty or absent when type is {move} (a preset move)"
        )

    if caps.camera_modes is not None and mode not in caps.camera_modes:
        allowed = ", ".join(sorted_modes(caps.camera_modes))
        fail("camera_control", f"needs mode {allowed} for model {model_name} (got mode {mode!r})")
    if caps.camera_durations is not None and duration not in caps.camera_durations:
        allowed = ", ".join(str(d) for d in sorted(caps.camera_durations))
        fail("camera_control", f"needs duration {allowed} for model {model_name} (got {duration})")

    if config is None and "config" in value:
        forwarded = dict(value)
        del forwarded["config"]
        return forwarded
    return value


def _check_simple_config(config: object) -> None:
    if config is None:
        fail("camera_control.config", "required when type is simple")
    if not isinstance(config, dict):
        fail("camera_control.config", f"must be an object (got {show(config)})")
    moving: list[str] = []
    for key, amount in config.items():
        if key not in _CONFIG_KEY_SET:
            fail(
                f"camera_control.config.{label(key)}",
                f"unknown key (allowed: {', '.join(CONFIG_KEYS)})",
            )
        if not is_number(amount):
            fail(f"camera_control.config.{key}", f"must be a number (got {show(amount)})")
        if not -AXIS_LIMIT <= amount <= AXIS_LIMIT:  # also refuses NaN, which compares false
            fail(
                f"camera_control.config.{key}",
                f"must be between -{AXIS_LIMIT} and {AXIS_LIMIT} (got {show(amount)})",
            )
        if amount != 0:
            moving.append(key)
    if len(moving) != 1:
        got = ", ".join(moving) if moving else "none"
        fail(
            "camera_control.config",
            f"exactly one of {', '.join(CONFIG_KEYS)} must be non-zero for type simple (got {got})",
        )
