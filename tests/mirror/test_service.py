"""Mirroring end to end on the real gateway + simulator (env fixture): the simulator's MP4 is
copied, the task row is rewritten once, clients only ever get gateway links, operators keep the
origin."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from kling_gateway.mirror import HttpxFetcher, Mirror, Outcome, build_mirror, public_videos
from kling_gateway.mirror.service import MARKER, media_key, mirror_task
from kling_gateway.services import transitions, wire
from kling_gateway.storage.tasks import TaskRecord
from kling_gateway.upstream.simulator import tiny_mp4
from kling_gateway.worker.mirror import MirrorWorker
from tests.conftest import Env
from tests.mirror.support import results_client


@pytest.fixture
def settings_overrides(tmp_path: Path) -> dict[str, Any]:
    return {"mirror_enabled": True, "mirror_dir": tmp_path / "media"}


@pytest.fixture
async def mirror(env: Env) -> AsyncIterator[Mirror]:
    """Origin URLs point at the in-process simulator: the fetcher uses its ASGI transport."""
    m = build_mirror(
        env.gw.settings, fetcher=HttpxFetcher(httpx.AsyncClient(transport=env.upstream), owns=True)
    )
    try:
        yield m
    finally:
        await m.aclose()


@dataclass
class Done:
    record: TaskRecord
    upstream_id: str
    origin_urls: list[str]


async def succeeded(env: Env, **extra: Any) -> Done:
    resp = await env.create({"model_name": "kling-v2-6", "prompt": "a fox", **extra})
    assert resp.status_code == 200, resp.text
    task_id = resp.json()["data"]["task_id"]
    await env.run_until_idle(8)
    record = await env.gw.tasks.get(task_id)
    assert record is not None and record.status == "succeed" and record.upstream_task_id
    videos = orjson.loads(record.result_json or "[]")
    urls = [v[f] for v in videos for f in ("url", "watermark_url") if f in v]
    return Done(record, record.upstream_task_id, urls)


async def test_mirrors_the_simulator_mp4(env: Env, mirror: Mirror) -> None:
    done = await succeeded(env)
    assert await MirrorWorker(env.gw, mirror).run_once() == 1

    path = env.gw.settings.mirror_dir / media_key(done.record.id, 0)
    data = path.read_bytes()
    assert data == tiny_mp4() and data[4:8] == b"ftyp"

    after = await env.gw.tasks.get(done.record.id)
    assert after is not None
    assert orjson.loads(after.origin_result_json or "") == orjson.loads(
        done.record.result_json or ""
    )
    stored = orjson.loads(after.result_json or "")
    assert stored == [{**orjson.loads(done.record.result_json or "")[0], "url": MARKER + "0"}]
    assert after.updated_at == done.record.updated_at  # mirroring is not a status change

    # the client view: no origin URL, no upstream id, whatever renders it
    text = (await env.get(done.record.id)).text
    for secret in (*done.origin_urls, done.upstream_id):
        assert secret not in text
    videos = public_videos(env.gw, after, "http://gw")
    assert videos is not None and videos[0]["url"].startswith(
        f"http://gw/kling/v1/results/{after.id}/0.mp4?"
    )
    assert videos[0]["id"] == stored[0]["id"] and videos[0]["duration"] == stored[0]["duration"]

    async with results_client(env.gw, mirror) as client:
        got = await client.get(videos[0]["url"])
    assert got.status_code == 200 and got.headers["content-type"] == "video/mp4"
    assert got.content == tiny_mp4()


async def test_watermarked_copy_is_mirrored_too(env: Env, mirror: Mirror) -> None:
    done = await succeeded(env, watermark_info={"enabled": True})
    assert len(done.origin_urls) == 2
    assert await mirror_task(env.gw, mirror, done.record) is Outcome.MIRRORED
    for watermark in (False, True):
        assert (
            env.gw.settings.mirror_dir / media_key(done.record.id, 0, watermark)
        ).read_bytes() == tiny_mp4()
    after = await env.gw.tasks.get(done.record.id)
    assert after is not None
    videos = public_videos(env.gw, after, None)
    assert videos is not None
    assert "/0-wm.mp4?" in videos[0]["watermark_url"] and "/0.mp4?" in videos[0]["url"]
    async with results_client(env.gw, mirror) as client:
        assert (await client.get(videos[0]["watermark_url"])).content == tiny_mp4()


async def test_pending_task_is_streamed_through_without_the_origin_url(
    env: Env, mirror: Mirror
) -> None:
    """Between succeed and the copy landing, clients already get a working gateway link."""
    done = await succeeded(env)
    videos = public_videos(env.gw, done.record, "http://gw")
    assert videos is not None and videos[0]["url"].startswith("http://gw/kling/v1/results/")
    assert all(url not in orjson.dumps(videos).decode() for url in done.origin_urls)
    async with results_client(env.gw, mirror) as client:
        got = await client.get(videos[0]["url"])
    assert got.status_code == 200 and got.content == tiny_mp4()
    assert not (
        env.gw.settings.mirror_dir / media_key(done.record.id, 0)
    ).exists()  # relayed, not stored


async def test_operator_view_keeps_the_origin(env: Env, mirror: Mirror) -> None:
    done = await succeeded(env)
    await MirrorWorker(env.gw, mirror).run_once()
    operator = await env.gw.tasks.get(done.record.id)
    assert operator is not None and operator.origin_result_json is not None
    assert done.origin_urls[0] in operator.origin_result_json
    listed = (await env.client.get("/kling/v1/videos/text2video", headers=env.auth())).text
    assert done.origin_urls[0] not in listed and done.upstream_id not in listed


_HOOKED = "videos" in inspect.signature(wire.task_object).parameters


@pytest.mark.skipif(not _HOOKED, reason="wire.task_object(videos=…) hook not applied yet")
async def test_client_get_serves_signed_gateway_links(env: Env, mirror: Mirror) -> None:
    done = await succeeded(env)
    await MirrorWorker(env.gw, mirror).run_once()
    data = (await env.get(done.record.id)).json()["data"]
    url = data["task_result"]["videos"][0]["url"]
    assert url.startswith(f"http://gw/kling/v1/results/{done.record.id}/0.mp4?expires=")
    async with results_client(env.gw, mirror) as client:
        assert (await client.get(url)).content == tiny_mp4()


_HOOKED_CALLBACK = "gw" in inspect.signature(transitions.callback_body).parameters


@pytest.mark.skipif(
    not _HOOKED_CALLBACK, reason="transitions.callback_body(t, gw) hook not applied yet"
)
async def test_callback_payload_carries_gateway_links(env: Env, mirror: Mirror) -> None:
    """The succeed event is frozen before the copy lands: it must already carry a gateway link."""
    done = await succeeded(env)
    callback_body: Any = transitions.callback_body  # its gw parameter arrives with the hook
    body = callback_body(done.record, env.gw).decode()
    assert "/kling/v1/results/" in body
    for secret in (*done.origin_urls, done.upstream_id):
        assert secret not in body
