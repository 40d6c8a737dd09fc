"""``GET /kling/v1/results/{task_id}/{slot}.mp4?expires=…&sig=…``: mirrored result videos.

No API key: the link itself is the credential (signed, expiring; see mirror/signing.py), because
players and Kling clients fetch ``videos[].url`` anonymously. Refusals use Kling's envelope:
403/1103 for a link that is unsigned, tampered or expired, 404/1203 for a task or video that is not
(or no longer) here.

A task still **pending** (succeeded, copy not finished) is streamed through from the origin rather
than answered 404: clients download right after ``succeed``, and this way they never see the Kling
URL. A task whose mirroring was **given up** redirects to the upstream URL its task object now shows
anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

from fastapi import APIRouter, Request
from starlette.background import BackgroundTask
from starlette.responses import FileResponse, RedirectResponse, Response, StreamingResponse

from ...domain.ids import looks_like_public_id
from ...domain.task import TaskStatus
from ...errors import NotFound, PermissionDenied, UpstreamFailure
from ...mirror.fetch import Fetched, MirrorError
from ...mirror.service import MARKER, Mirror, media_key, stored_value
from ...mirror.signing import RESULTS_PREFIX, parse_slot
from ...services.gateway import Gateway
from ..openapi import RESULT_OPENAPI, RESULT_RESPONSES

MP4 = "video/mp4"


def _int(raw: str | None) -> int | None:
    return (
        int(raw)
        if raw is not None and 0 < len(raw) <= 12 and raw.isascii() and raw.isdigit()
        else None
    )


def router(gateway: Callable[[], Gateway], mirror: Callable[[], Mirror]) -> APIRouter:
    api = APIRouter()

    async def get_result(request: Request, task_id: str, name: str) -> Response:
        """A result video by its signed link (take the link from the task object; it expires)."""
        gw = gateway()
        parsed = parse_slot(name)
        if parsed is None or not looks_like_public_id(task_id):
            raise NotFound("no such result video")
        index, watermark = parsed
        expires = _int(request.query_params.get("expires"))
        sig = request.query_params.get("sig") or ""
        if expires is None or len(sig) != 64:
            raise PermissionDenied(
                "a result link carries expires and sig; use the url from the task object"
            )
        now = gw.clock()
        if expires < now:
            raise PermissionDenied(
                "this result link has expired; query the task again for a fresh link"
            )
        if not mirror().signer.verify(task_id, index, expires, sig, watermark=watermark):
            raise PermissionDenied("this result link is not valid")

        record = await gw.tasks.get(task_id)
        value = stored_value(record, index, watermark) if record is not None else None
        if record is None or record.status != TaskStatus.SUCCEED.value or value is None:
            raise NotFound("no such result video")
        cache = {"Cache-Control": f"private, max-age={max(0, int(expires - now))}"}
        if value.startswith(MARKER):
            stored = await mirror().store.open(media_key(task_id, index, watermark))
            if stored is None:
                raise NotFound(
                    "this video is no longer stored on the gateway "
                    f"(results are kept {gw.settings.mirror_retention_days:g} days)"
                )
            return FileResponse(stored.path, media_type=MP4, headers=cache)
        if record.origin_result_json is not None:
            return RedirectResponse(value, status_code=302)
        return await _stream_through(mirror(), value, gw.settings.mirror_timeout_seconds, cache)

    api.add_api_route(
        RESULTS_PREFIX + "/{task_id}/{name}.mp4",
        get_result,
        methods=["GET"],
        tags=["results"],
        summary="Download a result video by its signed link",
        response_class=Response,
        openapi_extra=RESULT_OPENAPI,
        responses=RESULT_RESPONSES,
    )
    return api


async def _stream_through(
    mirror: Mirror, url: str, open_within: float, headers: dict[str, str]
) -> Response:
    """Relay the origin's body while it is not mirrored yet; nothing is stored on this path."""
    stack = contextlib.AsyncExitStack()
    try:
        async with asyncio.timeout(open_within):
            got: Fetched = await stack.enter_async_context(mirror.fetcher.open(url))
    except (MirrorError, TimeoutError) as exc:
        await stack.aclose()
        raise UpstreamFailure(
            "the video could not be fetched from upstream; try again shortly"
        ) from exc
    if got.status != 200:
        await stack.aclose()
        if 400 <= got.status < 500:
            raise NotFound("this video is no longer available upstream")
        raise UpstreamFailure("the video could not be fetched from upstream; try again shortly")

    async def body() -> AsyncIterator[bytes]:
        try:
            async for chunk in got.chunks:
                yield chunk
        finally:
            await stack.aclose()

    # No Content-Length: the body may be decoded from a compressed transfer; the origin's may lie.
    return StreamingResponse(
        body(), media_type=MP4, headers=headers, background=BackgroundTask(stack.aclose)
    )
