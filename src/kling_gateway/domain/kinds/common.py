"""What every kind's validator shares: the request value it returns, the context it runs in, and
the checks on fields that mean the same in every kind (envelope, prompt, mode, duration, lists).

Messages follow ``domain/_checks.py``: ``"<field path>: <rule>"``, first violation wins.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from kling_gateway.domain._checks import fail, label, one_of, parse_seconds, show, text
from kling_gateway.domain.kinds.table import Gate
from kling_gateway.domain.models import sorted_modes
from kling_gateway.domain.request import (
    check_callback_url,
    check_external_task_id,
    check_watermark,
)
from kling_gateway.domain.shape import check_body_shape
from kling_gateway.errors import BadRequest

C = TypeVar("C")

MAX_PROMPT = 2500
SOUND_VALUES = ("on", "off")
ENVELOPE_FIELDS = ("watermark_info", "callback_url", "external_task_id")
_ID_DIGITS = 20  # element ids are 18 digits today (above 2^53: never a float)
_MAX_ID = 10**_ID_DIGITS
# The gateway sets its own callback and external id towards Kling, never the client's.
_GATEWAY_OWNED = ("callback_url", "external_task_id")


@dataclass(frozen=True, slots=True)
class Context(Generic[C]):
    """What a validator needs besides the body: the model's row of the kind's table and the
    upstream model name to forward (None for kinds without ``model_name``)."""

    caps: C
    upstream_model: str | None = None
    strict: bool = False
    max_external_id_len: int = 64


@dataclass(frozen=True, slots=True)
class KindRequest:
    """The billed facts of one validated create plus the exact body to forward to Kling."""

    kind: str
    model_name: str | None  # the public name the client sent; None when the kind has no model
    mode: str | None
    # requested seconds, billed up front; None when the length is known only from the output
    # (motion control, lip-sync, an omni base-video edit, extend, effects)
    duration: int | None
    watermark: bool
    external_task_id: str | None
    callback_url: str | None
    # Shallow copy: nested objects the gateway does not rewrite are shared with the input body.
    upstream_body: dict[str, Any]
    sound: bool = False
    voice_control: bool = False  # "with specified voice" pricing
    video_input: bool = False  # omni with a reference or base video: its own price rows
    # a video id the client gave (extend, identify-face); the caller maps it to the upstream one
    # and must refuse another user's
    source_video_id: str | None = None


@dataclass(frozen=True, slots=True)
class Envelope:
    watermark: bool
    callback_url: str | None
    external_task_id: str | None


def start(
    body: Any, known: Collection[str], ctx: Context[Any], *, has_model: bool = True
) -> dict[str, Any]:
    """Shape and unknown-field checks, then the body to forward: known fields sent as null are
    dropped, the gateway-owned ones removed, and ``model_name`` set to the upstream model."""
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    check_body_shape(body)  # first: nothing below may see a deep or NUL body
    if ctx.strict:
        for key in body:
            if key not in known:
                fail(label(key), "unknown field")
    if not has_model and body.get("model_name") is not None:
        fail("model_name", "not accepted by this task type (Kling chooses the model)")
    out = {k: v for k, v in body.items() if v is not None or k not in known}
    for key in _GATEWAY_OWNED:
        out.pop(key, None)
    if has_model and ctx.upstream_model is not None:
        out["model_name"] = ctx.upstream_model
    return out


def envelope(body: dict[str, Any], ctx: Context[Any]) -> Envelope:
    return Envelope(
        watermark=check_watermark(body.get("watermark_info")),
        callback_url=check_callback_url(body.get("callback_url")),
        external_task_id=check_external_task_id(
            body.get("external_task_id"), ctx.max_external_id_len
        ),
    )


def model_name(body: object, default: str) -> str:
    """The public model the client asked for, else the kind's default (Kling's)."""
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    value = body.get("model_name")
    if value is None:
        return default
    if not isinstance(value, str) or not value.strip():
        fail("model_name", f"must be a non-empty string (got {show(value)})")
    return value


def prompt(body: dict[str, Any], field: str = "prompt", *, required: str | None = None) -> str:
    """A prompt of at most 2500 characters; ``required`` says when an empty one is refused."""
    value = body.get(field)
    if value is not None:
        text(field, value, MAX_PROMPT)
    if required is not None and (value is None or not value.strip()):
        fail(field, f"required and must not be empty {required}".rstrip())
    return value or ""


def mode(
    raw: object, allowed: frozenset[str] | None, model: str, out: dict[str, Any], default: str
) -> str | None:
    """The mode, forwarded explicitly so what Kling renders is what the gateway bills; None and
    not forwarded when the model offers no choice (a std/pro value is then tolerated)."""
    if allowed is None:
        if raw is not None:
            one_of("mode", raw, ("std", "pro"))
        out.pop("mode", None)
        return None
    if raw is None:
        if default not in allowed:
            choices = ", ".join(sorted_modes(allowed))
            fail("mode", f"required for model {model} (allowed: {choices})")
        chosen = default
    elif not isinstance(raw, str):
        fail("mode", f"must be a string (got {show(raw)})")
    elif raw not in allowed:
        choices = ", ".join(sorted_modes(allowed))
        fail("mode", f"{show(raw)} is not allowed for model {model} (allowed: {choices})")
    else:
        chosen = raw
    out["mode"] = chosen
    return chosen


def duration(raw: object, allowed: frozenset[int], model: str, default: int = 5) -> int:
    """Whole seconds from the model's list; an absent duration takes ``default``, checked too."""
    seconds = default if raw is None else parse_seconds(raw, "duration")
    if seconds not in allowed:
        choices = ", ".join(str(d) for d in sorted(allowed))
        what = f"'{seconds}'" if raw is not None else f"the default '{seconds}'"
        fail("duration", f"{what} is not allowed for model {model} (allowed: {choices})")
    return seconds


def switch(body: dict[str, Any], field: str) -> bool:
    """An ``on``/``off`` field (``sound``); absent is off."""
    raw = body.get(field)
    return raw is not None and one_of(field, raw, SOUND_VALUES) == "on"


def cfg_scale(raw: object, supported: bool, model: str) -> None:
    if raw is None:
        return
    if not supported:
        fail("cfg_scale", f"not supported for model {model}")
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        fail("cfg_scale", f"must be a number (got {show(raw)})")
    if not 0 <= raw <= 1:  # NaN compares false, so it is refused too
        fail("cfg_scale", f"must be between 0 and 1 (got {show(raw)})")


def array(field: str, raw: object, most: int, what: str) -> list[Any]:
    """A JSON array of at most ``most`` items; absent is empty."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        fail(field, f"must be an array of {what} (got {show(raw)})")
    if len(raw) > most:
        fail(field, f"must hold at most {most} {what} (got {len(raw)})")
    return raw


def item(field: str, raw: object, what: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        fail(field, f"must be an object with {what} (got {show(raw)})")
    return raw


def elements(body: dict[str, Any], most: int, model: str) -> int:
    """``element_list`` items ``{element_id}``: 18-digit ids, as a JSON integer or a digit string
    (never a float, which would lose digits). Returns the count."""
    raw = body.get("element_list")
    if raw is not None and most == 0 and raw != []:
        fail("element_list", f"not supported for model {model}")
    items = array("element_list", raw, most, "elements")
    for pos, element in enumerate(items):
        where = f"element_list[{pos}]"
        value = item(where, element, "an element_id").get("element_id")
        is_int = isinstance(value, int) and not isinstance(value, bool) and 0 < value < _MAX_ID
        is_digits = isinstance(value, str) and value.isascii() and value.isdigit()
        if not (is_int or (is_digits and len(str(value)) <= _ID_DIGITS)):
            fail(f"{where}.element_id", f"must be a positive integer id (got {show(value)})")
    return len(items)


def required_text(body: dict[str, Any], field: str, max_len: int = 256) -> str:
    value = body.get(field)
    if value is None:
        fail(field, "required")
    value = text(field, value, max_len)
    if not value.strip():
        fail(field, "must not be empty")
    return value


def gated(field: str, gate: Gate | None, model: str, mode: str | None, seconds: int | None) -> None:
    """Refuse a feature the model's row does not offer, or not in this mode and duration."""
    if gate is None:
        fail(field, f"not supported for model {model}")
    if not gate.allows(mode, seconds):
        got = ", ".join(
            part
            for part in (
                None if mode is None else f"mode {mode}",
                None if seconds is None else f"duration {seconds}",
            )
            if part
        )
        fail(field, f"needs {gate.describe()} for model {model} (got {got})")
