"""What the admin route modules share: the token check (http/routes/admin.py's, unchanged), the JSON
object body, the field whitelist, single-valued query strings, and operator errors as Kling
errors."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fastapi import Request

from ...errors import InvalidParameter
from ...services.gateway import Gateway
from .admin import _admin, _object, _only, require_admin

T = TypeVar("T")
read_object = _object
only = _only
run = _admin  # AdminNotFound → 404/1203, AdminError → 400/1201 naming the field


async def guarded(gateway: Callable[[], Gateway], request: Request) -> Gateway:
    gw = gateway()
    await require_admin(gw, request)
    return gw


def query(request: Request) -> dict[str, str]:
    """The query string as one value per name; a repeated name is refused (which one would win?)."""
    out: dict[str, str] = {}
    for name, value in request.query_params.multi_items():
        if name in out:
            raise InvalidParameter(f"{name}: give it once")
        out[name] = value
    return out


async def object_with(request: Request, allowed: frozenset[str]) -> dict[str, Any]:
    body = await read_object(request)
    only(body, allowed)
    return body


def page(q: dict[str, str], default_size: int = 50) -> tuple[int, int]:
    """(page from 1, page size up to 500) from ``page`` and ``page_size``."""

    def number(name: str, default: int, high: int) -> int:
        value = q.get(name)
        if value is None:
            return default
        if not (
            value.isascii() and value.isdigit() and len(value) <= 6 and 1 <= int(value) <= high
        ):
            raise InvalidParameter(f"{name}: must be an integer from 1 to {high}")
        return int(value)

    return number("page", 1, 100_000), number("page_size", default_size, 500)


async def call(work: Awaitable[T]) -> T:
    return await run(work)
