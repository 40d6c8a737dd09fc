"""Limits on client input that hold before any field rule runs: how deep a JSON body nests, and
that no string holds a NUL character.

Depth: the JSON parser accepts 1,024 levels, but the encoders downstream (the request fingerprint,
the stored body, the body forwarded upstream) stop near 255, and a recursive walk would hit Python's
stack. A Kling body needs a handful of levels, so past ``MAX_DEPTH`` it is refused, iteratively; the
walk itself is bounded by ``MAX_CONTAINERS``.

NUL: PostgreSQL text cannot hold it, SQLite can; refusing it wherever a client string may be stored
or looked up keeps both databases answering alike (and Kling has no use for it either).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

from kling_gateway.domain._checks import fail, label
from kling_gateway.errors import BadRequest

MAX_DEPTH = 32  # the top-level object is level 1; Kling's deepest documented field sits at level 4
# Bounds the walk of a hostile body on the event loop (docs/benchmarks.md); a Kling body holds a
# few dozen containers.
MAX_CONTAINERS = 10_000
_TOO_MANY = f"request body holds more than {MAX_CONTAINERS} objects and arrays"
NUL = "\x00"

# A field path as a linked list (parent, key), rendered only when a message needs it.
_Path = tuple["_Path", str | int] | None


def storable(text: str) -> bool:
    """Whether ``text`` can be stored in, or looked up from, either database."""
    return NUL not in text


def check_body_shape(body: Any) -> None:
    """Refuse a body nested deeper than ``MAX_DEPTH`` (1200) or holding a NUL in any key or string
    (1201, naming the field), or holding more than ``MAX_CONTAINERS`` objects and arrays (1200).
    Iterative, so no depth the parser accepts can exhaust the stack."""
    stack: list[tuple[Any, int, _Path]] = [(body, 1, None)]
    seen = 1
    while stack:
        value, depth, where = stack.pop()
        if depth > MAX_DEPTH:
            raise BadRequest(
                f"request body nests deeper than {MAX_DEPTH} levels of objects and arrays "
                f"(at {_render(where)})"
            )
        if isinstance(value, dict):
            _check_keys(value.keys(), where)
        for key, item in _members(value):
            kind = type(item)
            if kind is str:
                if NUL in item:
                    fail(_render((where, key)), "must not contain NUL characters")
            elif kind is dict or kind is list:
                seen += 1  # counted when found, so a huge array of them stops the walk early
                if seen > MAX_CONTAINERS:
                    raise BadRequest(_TOO_MANY)
                stack.append((item, depth + 1, (where, key)))


# C-speed passes skip the per-member loop for the common all-numbers or all-strings arrays: a 1 MB
# array of them would otherwise stall the event loop (docs/benchmarks.md).
_SCALARS = frozenset({int, float, bool, type(None)})
_SMALL = 16  # below this, the member loop is cheaper than the passes


def _check_keys(keys: Collection[Any], where: _Path) -> None:
    if len(keys) > _SMALL and set(map(type, keys)) == {str} and NUL not in "".join(keys):
        return
    for key in keys:
        if isinstance(key, str) and NUL in key:
            fail(_render((where, key)), "field names must not contain NUL characters")


def _members(value: dict[Any, Any] | list[Any]) -> Iterable[tuple[Any, Any]]:
    """(key or index, member) pairs worth a look; none when every member is a NUL-free scalar."""
    members = value.values() if isinstance(value, dict) else value
    if len(members) > _SMALL:
        kinds = set(map(type, members))
        if kinds <= _SCALARS or (kinds == {str} and NUL not in "".join(members)):
            return ()
    return value.items() if isinstance(value, dict) else enumerate(value)


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
