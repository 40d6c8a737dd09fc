"""Limits on client input that hold before any field rule runs: how deep a JSON body nests, and
that no string holds a NUL character.

Depth: the JSON parser accepts 1,024 levels, but the encoders downstream (the request fingerprint,
the stored body, the body forwarded upstream) stop near 255, and a recursive walk would hit Python's
stack. A Kling body needs a handful of levels, so past ``MAX_DEPTH`` it is refused, iteratively.

NUL: PostgreSQL text cannot hold it, SQLite can; refusing it wherever a client string may be stored
or looked up keeps both databases answering alike (and Kling has no use for it either).
"""

from __future__ import annotations

from typing import Any

from kling_gateway.domain._checks import fail, label
from kling_gateway.errors import BadRequest

MAX_DEPTH = 32  # the top-level object is level 1; Kling's deepest documented field sits at level 4
NUL = "\x00"

# A field path as a linked list (parent, key), rendered only when a message needs it.
_Path = tuple["_Path", str | int] | None


def storable(text: str) -> bool:
    """Whether ``text`` can be stored in, or looked up from, either database."""
    return NUL not in text


def check_body_shape(body: Any) -> None:
    """Refuse a body nested deeper than ``MAX_DEPTH`` (1200) or holding a NUL in any key or string
    (1201, naming the field). Iterative, so no depth the parser accepts can exhaust the stack."""
    stack: list[tuple[Any, int, _Path]] = [(body, 1, None)]
    while stack:
        value, depth, where = stack.pop()
        if depth > MAX_DEPTH:
            raise BadRequest(
                f"request body nests deeper than {MAX_DEPTH} levels of objects and arrays "
                f"(at {_render(where)})"
            )
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            if isinstance(key, str) and NUL in key:
                fail(_render((where, key)), "field names must not contain NUL characters")
            if isinstance(item, str):
                if NUL in item:
                    fail(_render((where, key)), "must not contain NUL characters")
            elif isinstance(item, dict | list):
                stack.append((item, depth + 1, (where, key)))


def _render(where: _Path) -> str:
    keys: list[str | int] = []
    while where is not None:
        where, key = where
        keys.append(key)
    out = ""
    for key in reversed(keys):
        if isinstance(key, int):
            out += f"[{key}]"
        else:
            out += ("." if out else "") + label(key).replace(NUL, "\\0")
    return out or "the top level"
