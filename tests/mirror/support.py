"""Shared pieces for the mirroring tests: a loopback aiohttp origin serving the simulator's real MP4
(and misbehaving variants), gateway/mirror builders, and a helper inserting a succeeded task row."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
from aiohttp import web
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from kling_gateway.domain.task import TaskStatus
from kling_gateway.errors import KlingError
from kling_gateway.http import envelope
from kling_gateway.http.routes import results
from kling_gateway.mirror import AiohttpFetcher, Mirror, build_mirror
from kling_gateway.services import admin
from kling_gateway.services.gateway import Gateway, build_gateway
from kling_gateway.storage.tasks import TaskRecord
from kling_gateway.upstream.simulator import ManualClock, tiny_mp4
from tests.conftest import make_settings

MP4 = tiny_mp4()


@dataclass
class Origin:
    """Paths: /video.mp4 (the real MP4), /chunked.mp4 (same bytes, no Content-Length), /slow.mp4
    (headers, then a stall), /gone.mp4 (404), /busy.mp4 (503), /wm.mp4 (watermarked copy, same
    bytes)."""

    base: str = ""
    hits: Counter[str] = field(default_factory=Counter)
    stall: asyncio.Event = field(default_factory=asyncio.Event)

    def url(self, name: str) -> str:
        return f"{self.base}/{name}"


@contextlib.asynccontextmanager
async def origin_server() -> AsyncIterator[Origin]:
    origin = Origin()

    async def handle(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        origin.hits[name] += 1
        if name in ("video.mp4", "wm.mp4"):
            return web.Response(body=MP4, content_type="video/mp4")
        if name == "chunked.mp4":
            resp = web.StreamResponse(headers={"Content-Type": "video/mp4"})
            resp.enable_chunked_encoding()
            await resp.prepare(request)
            for i in range(0, len(MP4), 512):
                await resp.write(MP4[i : i + 512])
            await resp.write_eof()
            return resp
        if name == "slow.mp4":
            resp = web.StreamResponse(headers={"Content-Type": "video/mp4"})
            resp.enable_chunked_encoding()
            await resp.prepare(request)
            await resp.write(MP4[:100])
            await origin.stall.wait()
            return resp
        if name == "busy.mp4":
            return web.Response(status=503, text="busy")
        return web.Response(status=404, text="gone")

    app = web.Application()
    app.router.add_get("/{name}", handle)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        server = site._server
        assert server is not None and isinstance(server, asyncio.Server)
        port = server.sockets[0].getsockname()[1]
        origin.base = f"http://127.0.0.1:{port}"
        yield origin
    finally:
        origin.stall.set()
        await runner.cleanup()


@dataclass
class Parts:
    gw: Gateway
    mirror: Mirror
    clock: ManualClock
    user_id: int
    media: Path


@contextlib.asynccontextmanager
async def gateway_with_mirror(
    tmp_path: Path, *, database_url: str | None = None, **overrides: Any
) -> AsyncIterator[Parts]:
    """A gateway (no upstream traffic needed) plus a Mirror over the default aiohttp fetcher."""
    clock = ManualClock()
    values: dict[str, Any] = {"mirror_enabled": True, "mirror_dir": tmp_path / "media"}
    values.update(overrides)
    settings = make_settings(tmp_path, database_url, **values)
    gw = await build_gateway(settings, clock=clock)
    mirror = build_mirror(settings, fetcher=AiohttpFetcher())
    try:
        user = await admin.create_user(gw, "alice")
        yield Parts(gw, mirror, clock, user.id, tmp_path / "media")
    finally:
        await mirror.aclose()
        await gw.aclose()


async def insert_succeeded(
    gw: Gateway, user_id: int, videos: list[dict[str, Any]], *, age_ms: int = 0
) -> TaskRecord:
    now = gw.now_ms()
    task_id = gw.ids.mint(now - age_ms)
    record = TaskRecord(
        id=task_id,
        user_id=user_id,
        key_id=None,
        public_model="kling-v2-6",
        upstream_model="kling-v2-6",
        status=TaskStatus.SUCCEED.value,
        status_msg="",
        external_task_id=None,
        request_hash="0" * 64,
        request_json="{}",
        callback_url=None,
        mode="std",
        duration=5,
        sound=False,
        watermark=any("watermark_url" in v for v in videos),
        upstream_account_id=None,
        upstream_task_id="UPSTREAM-" + task_id,
        result_json=orjson.dumps(videos).decode(),
        unit_deduction="1",
        created_at=now - age_ms,
        updated_at=now - age_ms,
        next_poll_at=None,
        poll_attempts=1,
    )
    await gw.tasks.insert(record)
    return record


def video(url: str, **extra: Any) -> dict[str, Any]:
    return {"id": "vid-1", "url": url, "duration": "5.1", **extra}


def results_app(gw: Gateway, mirror: Mirror) -> FastAPI:
    """The results router behind the gateway's own envelope handlers (what app.py will mount)."""
    app = FastAPI()
    app.add_middleware(envelope.RequestIdMiddleware)
    app.add_exception_handler(KlingError, envelope.on_kling_error)
    app.add_exception_handler(HTTPException, envelope.on_http_error)
    app.add_exception_handler(RequestValidationError, envelope.on_validation_error)
    app.include_router(results.router(lambda: gw, lambda: mirror))
    return app


@contextlib.asynccontextmanager
async def results_client(gw: Gateway, mirror: Mirror) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=results_app(gw, mirror))
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        yield client
