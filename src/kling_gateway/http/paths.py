"""Names in ``/admin/v1`` paths may hold any character a name may, ``/`` and ``%`` too, when the
client percent-encodes them (``/admin/v1/users/ops%2Feu``).

An ASGI server decodes the path before routing, so ``%2F`` would become a path separator. For admin
paths, ``EncodedNames`` routes on the raw path instead, decoded except for ``%2F`` and ``%25``;
the ``seg`` convertor (``{name:seg}``) then decodes those two inside one path parameter. Other
paths are left as the server decoded them."""

from __future__ import annotations

import re
from urllib.parse import quote, unquote

from starlette.convertors import Convertor, register_url_convertor
from starlette.types import ASGIApp, Receive, Scope, Send

ADMIN = "/admin/v1/"
_KEPT = re.compile(r"(%2[fF]|%25)")


class Segment(Convertor[str]):
    regex = "[^/]+"

    def convert(self, value: str) -> str:
        return unquote(value)

    def to_string(self, value: str) -> str:
        return quote(value, safe="")


def register() -> None:
    register_url_convertor("seg", Segment())


def keep_separators(raw: str) -> str:
    """The path decoded, except ``%2F`` and ``%25`` (kept, upper-case, for ``Segment``)."""
    parts = _KEPT.split(raw)
    return "".join(p.upper() if i % 2 else unquote(p) for i, p in enumerate(parts))


class EncodedNames:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = scope.get("raw_path")
        if scope["type"] == "http" and raw and scope["path"].startswith(ADMIN):
            text = raw.decode("latin-1")
            if _KEPT.search(text):
                scope = {**scope, "path": keep_separators(text)}
        await self.app(scope, receive, send)
