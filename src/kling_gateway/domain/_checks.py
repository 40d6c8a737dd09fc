"""Helpers shared by the text2video body validators (request, multishot, camera).

Kept in their own module so the validators can share one wording for errors without
importing each other. Every message is ``"<field path>: <rule>"`` so a client can
find the offending field without guessing.
"""

from __future__ import annotations

from typing import NoReturn

from kling_gateway.errors import InvalidParameter

# client values are echoed in messages; cap them so a 2 MB string can't bloat an error
_SHOW_MAX = 40
_LABEL_MAX = 64
# int() on a 5000-digit string raises, and printing a huge int does too; no real
# duration is near this.
_MAX_SECONDS_DIGITS = 6
_MAX_SECONDS = 999_999


def fail(field: str, rule: str) -> NoReturn:
    raise InvalidParameter(f"{field}: {rule}")


def label(key: object) -> str:
    """A client-chosen key, shortened, for use as a field path in a message."""
    text = str(key)
    return text if len(text) <= _LABEL_MAX else text[:_LABEL_MAX] + "…"


def json_type(value: object) -> str:
    """Name the JSON type, since clients think in JSON, not Python (``bool`` is not a
    number there)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def show(value: object) -> str:
    """A client value as a message fragment: quoted strings, plain numbers, JSON type
    names otherwise."""
    if isinstance(value, str):
        text = value if len(value) <= _SHOW_MAX else value[:_SHOW_MAX] + "…"
        return repr(text)
    if isinstance(value, bool) or value is None:
        return json_type(value)
    if isinstance(value, int | float):
        try:
            text = repr(value)
        except ValueError:  # int too large to render (Python's 4300-digit limit)
            return "a very large number"
        return text if len(text) <= _SHOW_MAX else "a very large number"
    return json_type(value)


def is_number(value: object) -> bool:
    """JSON number: Python's bool is an int subclass but ``true`` is not a number to a client."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def parse_seconds(value: object, field: str) -> int:
    """Whole seconds from a JSON integer or a string of ASCII digits (Kling's own form is ``"5"``).

    Floats (``5.5``, even ``5.0``) and strings like ``"5.0"`` or ``" 5"`` are refused rather than
    rounded: a duration is billed, so the gateway must not guess what the client meant.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        if -_MAX_SECONDS <= value <= _MAX_SECONDS:
            return value
        fail(field, f"out of range (got {show(value)})")
    if isinstance(value, str) and value.isascii() and value.isdigit():
        if len(value) <= _MAX_SECONDS_DIGITS:
            return int(value)
        fail(field, f"out of range (got {show(value)})")
    fail(
        field,
        "must be a whole number of seconds, as an integer or a string like '5' "
        f"(got {show(value)})",
    )


def one_of(field: str, value: object, allowed: tuple[str, ...]) -> str:
    """Check a string enum and return it typed; the message lists the choices so the
    client can fix it."""
    if isinstance(value, str) and value in allowed:
        return value
    choices = ", ".join(allowed)
    if not isinstance(value, str):
        fail(field, f"must be a string, one of {choices} (got {show(value)})")
    fail(field, f"must be one of {choices} (got {show(value)})")


def text(field: str, value: object, max_len: int) -> str:
    if not isinstance(value, str):
        fail(field, f"must be a string (got {show(value)})")
    if len(value) > max_len:
        fail(field, f"must be at most {max_len} characters (got {len(value)})")
    return value
