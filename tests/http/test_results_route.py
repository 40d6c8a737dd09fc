"""GET /kling/v1/results/{task_id}/{slot}.mp4: signed, expiring links; Kling envelope on refusal."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from kling_gateway.mirror import Outcome, mirror_task, public_videos
from kling_gateway.mirror.service import media_key
from kling_gateway.mirror.signing import expiry, signed_url
from kling_gateway.storage.tasks import TaskRecord
from tests.mirror.support import (
    MP4,
    Origin,
    Parts,
    gateway_with_mirror,
    insert_succeeded,
    origin_server,
    results_client,
    video,
)


@dataclass
class Ctx:
    parts: Parts
    origin: Origin
    client: httpx.AsyncClient
    task: TaskRecord
    url: str  # the signed link a client got for the mirrored task


@pytest.fixture
async def ctx(tmp_path: Path) -> AsyncIterator[Ctx]:
    async with origin_server() as origin, gateway_with_mirror(tmp_path) as parts:
        task = await insert_succeeded(parts.gw, parts.user_id, [video(origin.url("video.mp4"))])
        assert await mirror_task(parts.gw, parts.mirror, task) is Outcome.MIRRORED
        row = await parts.gw.tasks.get(task.id)
        assert row is not None
        videos = public_videos(parts.gw, row, "http://gw")
        assert videos is not None
        async with results_client(parts.gw, parts.mirror) as client:
            yield Ctx(parts, origin, client, row, videos[0]["url"])


def assert_kling_error(resp: httpx.Response, status: int, code: int, words: str) -> None:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["code"] == code and body["data"] is None
    assert body["request_id"] == resp.headers["x-request-id"]
    assert words in body["message"]


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()} | changes
    return f"{parts.path}?" + "&".join(f"{k}={v}" for k, v in query.items())


async def test_valid_link_serves_the_file(ctx: Ctx) -> None:
    resp = await ctx.client.get(ctx.url)
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "video/mp4"
    assert resp.content == MP4 and resp.content[4:8] == b"ftyp"
    assert resp.headers["cache-control"].startswith("private, max-age=")
    assert ctx.origin.hits["video.mp4"] == 1  # served from the mirror, not the origin


async def test_range_requests(ctx: Ctx) -> None:
    resp = await ctx.client.get(ctx.url, headers={"Range": "bytes=0-7"})
    assert resp.status_code == 206
    assert resp.content == MP4[:8]
    assert resp.headers["content-range"] == f"bytes 0-7/{len(MP4)}"


async def test_expired_link(ctx: Ctx) -> None:
    ctx.parts.clock.advance(ctx.parts.gw.settings.mirror_url_ttl_seconds + 3601)
    assert_kling_error(await ctx.client.get(ctx.url), 403, 1103, "expired")


async def test_fresh_link_after_expiry_works(ctx: Ctx) -> None:
    ctx.parts.clock.advance(ctx.parts.gw.settings.mirror_url_ttl_seconds + 3601)
    videos = public_videos(ctx.parts.gw, ctx.task, "http://gw")
    assert videos is not None and videos[0]["url"] != ctx.url
    assert (await ctx.client.get(videos[0]["url"])).status_code == 200


@pytest.mark.parametrize("field", ["sig", "expires"])
async def test_tampered_link(ctx: Ctx, field: str) -> None:
    q = parse_qs(urlsplit(ctx.url).query)
    if field == "sig":
        sig = q["sig"][0]
        changed = with_query(ctx.url, sig=("0" if sig[0] != "0" else "1") + sig[1:])
    else:
        changed = with_query(ctx.url, expires=str(int(q["expires"][0]) + 86_400))
    assert_kling_error(await ctx.client.get(changed), 403, 1103, "not valid")


async def test_link_of_one_task_does_not_open_another(ctx: Ctx) -> None:
    other = await insert_succeeded(
        ctx.parts.gw, ctx.parts.user_id, [video(ctx.origin.url("video.mp4"))]
    )
    await mirror_task(ctx.parts.gw, ctx.parts.mirror, other)
    stolen = ctx.url.replace(ctx.task.id, other.id)
    assert_kling_error(await ctx.client.get(stolen), 403, 1103, "not valid")
    for slot in ("1", "0-wm"):
        assert_kling_error(
            await ctx.client.get(ctx.url.replace("/0.mp4?", f"/{slot}.mp4?")), 403, 1103, ""
        )


@pytest.mark.parametrize(
    "query", ["", "?expires=1900000000", "?sig=" + "a" * 64, "?expires=x&sig=" + "a" * 64]
)
async def test_unsigned_link(ctx: Ctx, query: str) -> None:
    resp = await ctx.client.get(f"/kling/v1/results/{ctx.task.id}/0.mp4{query}")
    assert_kling_error(resp, 403, 1103, "expires and sig")


@pytest.mark.parametrize(
    "path",
    [
        "/kling/v1/results/abc/0.mp4",
        "/kling/v1/results/{id}/01.mp4",
        "/kling/v1/results/{id}/x.mp4",
    ],
)
async def test_malformed_paths_are_404(ctx: Ctx, path: str) -> None:
    resp = await ctx.client.get(path.format(id=ctx.task.id) + "?expires=1&sig=" + "a" * 64)
    assert_kling_error(resp, 404, 1203, "no such result")


async def test_signed_link_to_missing_task_or_video(ctx: Ctx) -> None:
    signer, exp = ctx.parts.mirror.signer, expiry(ctx.parts.clock(), 600)
    for task_id, index in (("100000000000000001", 0), (ctx.task.id, 3)):
        url = signed_url(signer, "http://gw", task_id, index, exp)
        assert_kling_error(await ctx.client.get(url), 404, 1203, "no such result")


async def test_deleted_by_retention(ctx: Ctx) -> None:
    (ctx.parts.media / media_key(ctx.task.id, 0)).unlink()
    assert_kling_error(await ctx.client.get(ctx.url), 404, 1203, "no longer stored")


async def test_pending_task_streams_from_the_origin(ctx: Ctx) -> None:
    pending = await insert_succeeded(
        ctx.parts.gw, ctx.parts.user_id, [video(ctx.origin.url("chunked.mp4"))]
    )
    videos = public_videos(ctx.parts.gw, pending, "http://gw")
    assert videos is not None and "127.0.0.1" not in videos[0]["url"]
    resp = await ctx.client.get(videos[0]["url"])
    assert resp.status_code == 200 and resp.content == MP4
    assert resp.headers["content-type"] == "video/mp4"
    assert not (ctx.parts.media / media_key(pending.id, 0)).exists()


@pytest.mark.parametrize(
    ("name", "status", "code"), [("gone.mp4", 404, 1203), ("busy.mp4", 500, 5000)]
)
async def test_pending_task_origin_errors(ctx: Ctx, name: str, status: int, code: int) -> None:
    pending = await insert_succeeded(ctx.parts.gw, ctx.parts.user_id, [video(ctx.origin.url(name))])
    url = signed_url(
        ctx.parts.mirror.signer, "http://gw", pending.id, 0, expiry(ctx.parts.clock(), 600)
    )
    assert_kling_error(await ctx.client.get(url), status, code, "upstream")


async def test_given_up_task_redirects_to_the_origin(ctx: Ctx) -> None:
    gone = await insert_succeeded(
        ctx.parts.gw, ctx.parts.user_id, [video(ctx.origin.url("gone.mp4"))]
    )
    url = signed_url(
        ctx.parts.mirror.signer, "http://gw", gone.id, 0, expiry(ctx.parts.clock(), 600)
    )
    assert await mirror_task(ctx.parts.gw, ctx.parts.mirror, gone) is Outcome.GAVE_UP
    row = await ctx.parts.gw.tasks.get(gone.id)
    assert row is not None
    assert public_videos(ctx.parts.gw, row, "http://gw") == [video(ctx.origin.url("gone.mp4"))]
    resp = await ctx.client.get(url)
    assert resp.status_code == 302 and resp.headers["location"] == ctx.origin.url("gone.mp4")


async def test_mirrored_links_outlive_switching_mirroring_off(tmp_path: Path) -> None:
    async with origin_server() as origin, gateway_with_mirror(tmp_path) as parts:
        task = await insert_succeeded(parts.gw, parts.user_id, [video(origin.url("video.mp4"))])
        pending_off = await insert_succeeded(
            parts.gw, parts.user_id, [video(origin.url("video.mp4"))]
        )
        await mirror_task(parts.gw, parts.mirror, task)
        row = await parts.gw.tasks.get(task.id)
        assert row is not None
        parts.gw.settings = parts.gw.settings.model_copy(update={"mirror_enabled": False})
        videos = public_videos(parts.gw, row, None)
        assert videos is not None and "/kling/v1/results/" in videos[0]["url"]
        assert public_videos(parts.gw, pending_off, None) == [video(origin.url("video.mp4"))]
