"""Reading tasks back: one by our id or the client's own external_task_id, and the list, always from
our database (never upstream), with result URLs pointing at the mirror when mirroring is on."""

from __future__ import annotations

from typing import Any

from ..domain.shape import storable
from ..errors import InvalidParameter, NotFound
from ..mirror.service import public_videos
from .auth import Principal
from .gateway import Gateway
from .wire import task_object

PAGE_NUM_MAX = 1000
PAGE_SIZE_MAX = 500


async def get(
    gw: Gateway, principal: Principal, ident: str, base_url: str | None = None
) -> dict[str, Any]:
    # a NUL cannot be stored, so it names nothing (and PostgreSQL would refuse the query)
    record = await gw.tasks.find_for_user(principal.user_id, ident) if storable(ident) else None
    if record is None:
        raise NotFound(f"task {ident!r} does not exist")
    return task_object(record, public_videos(gw, record, base_url))


def _page_param(raw: str | None, name: str, default: int, maximum: int) -> int:
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidParameter(
            f"{name}: must be an integer between 1 and {maximum} (got {raw!r})"
        ) from None
    if not 1 <= value <= maximum:
        raise InvalidParameter(f"{name}: must be between 1 and {maximum} (got {value})")
    return value


async def list_page(
    gw: Gateway,
    principal: Principal,
    page_num: str | None,
    page_size: str | None,
    base_url: str | None = None,
) -> list[dict[str, Any]]:
    num = _page_param(page_num, "pageNum", 1, PAGE_NUM_MAX)
    size = _page_param(page_size, "pageSize", 30, PAGE_SIZE_MAX)
    records = await gw.tasks.list_for_user(principal.user_id, (num - 1) * size, size)
    return [task_object(r, public_videos(gw, r, base_url)) for r in records]
