"""MirrorWorker: claims, size cap, timeouts and retries, give-up rules, two workers, retention."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest

from kling_gateway.mirror import AiohttpFetcher, Fetched, Outcome, mirror_task
from kling_gateway.mirror.service import GIVE_UP_AFTER_MS, media_key
from kling_gateway.worker.mirror import MirrorWorker
from tests.mirror.support import (
    MP4,
    Origin,
    Parts,
    gateway_with_mirror,
    insert_succeeded,
    origin_server,
    video,
)
from tests.postgres import fresh_run_database


@pytest.fixture
async def origin() -> AsyncIterator[Origin]:
    async with origin_server() as o:
        yield o


@pytest.fixture(params=["sqlite", "postgres"])
async def parts(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Parts]:
    """The claim SQL differs by dialect (FOR UPDATE SKIP LOCKED on PostgreSQL), so both run it."""
    url = None
    if request.param == "postgres":
        url = await fresh_run_database()
    async with gateway_with_mirror(tmp_path, database_url=url, mirror_timeout_seconds=0.3) as p:
        yield p


def files(root: Path) -> list[str]:
    return (
        sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
        if root.exists()
        else []
    )


async def test_mirrors_and_settles_once(parts: Parts, origin: Origin) -> None:
    t = await insert_succeeded(parts.gw, parts.user_id, [video(origin.url("video.mp4"))])
    worker = MirrorWorker(parts.gw, parts.mirror)
    assert await worker.run_once() == 1
    assert worker.outcomes[Outcome.MIRRORED] == 1
    assert files(parts.media) == [media_key(t.id, 0)]
    assert (parts.media / media_key(t.id, 0)).read_bytes() == MP4
    row = await parts.gw.tasks.get(t.id)
    assert row is not None and row.lease_until is None and row.lease_owner is None
    assert await worker.run_once() == 0  # settled: never picked again
    assert origin.hits["video.mp4"] == 1


async def test_size_cap_keeps_nothing_and_the_origin_url(tmp_path: Path, origin: Origin) -> None:
    async with gateway_with_mirror(tmp_path, mirror_max_bytes=1024) as p:  # the MP4 is ~3.8 KB
        t = await insert_succeeded(p.gw, p.user_id, [video(origin.url("chunked.mp4"))])
        worker = MirrorWorker(p.gw, p.mirror)
        assert await worker.run_once() == 1
        assert worker.outcomes[Outcome.GAVE_UP] == 1
        assert files(p.media) == []
        row = await p.gw.tasks.get(t.id)
        assert row is not None
        assert row.result_json == t.result_json  # the client keeps a working (upstream) link
        assert row.origin_result_json == t.result_json  # settled: not retried
        p.clock.advance(3 * 3600)
        assert await worker.run_once() == 0
        assert origin.hits["chunked.mp4"] == 1


async def test_timeout_is_retried_later_then_given_up(parts: Parts, origin: Origin) -> None:
    t = await insert_succeeded(parts.gw, parts.user_id, [video(origin.url("slow.mp4"))])
    worker = MirrorWorker(parts.gw, parts.mirror)
    assert await worker.run_once() == 1
    assert worker.outcomes[Outcome.RETRY] == 1
    assert files(parts.media) == []
    row = await parts.gw.tasks.get(t.id)
    assert row is not None and row.origin_result_json is None  # still pending

    assert await worker.run_once() == 0  # not before its retry time (30 s at first)
    parts.clock.advance(31)
    assert await worker.run_once() == 1
    assert worker.outcomes[Outcome.RETRY] == 2

    parts.clock.advance(GIVE_UP_AFTER_MS / 1000)  # a day of failures: stop trying
    assert await worker.run_once() == 1
    assert worker.outcomes[Outcome.GAVE_UP] == 1
    assert origin.hits["slow.mp4"] == 2  # the last pass gave up without fetching
    row = await parts.gw.tasks.get(t.id)
    assert (
        row is not None
        and row.result_json == t.result_json
        and row.origin_result_json == t.result_json
    )


@pytest.mark.parametrize(
    ("name", "outcome"), [("gone.mp4", Outcome.GAVE_UP), ("busy.mp4", Outcome.RETRY)]
)
async def test_origin_errors(parts: Parts, origin: Origin, name: str, outcome: Outcome) -> None:
    t = await insert_succeeded(parts.gw, parts.user_id, [video(origin.url(name))])
    assert await mirror_task(parts.gw, parts.mirror, t) is outcome


async def test_a_failed_second_video_removes_the_first(parts: Parts, origin: Origin) -> None:
    t = await insert_succeeded(
        parts.gw,
        parts.user_id,
        [video(origin.url("video.mp4"), watermark_url=origin.url("gone.mp4"))],
    )
    assert await mirror_task(parts.gw, parts.mirror, t) is Outcome.GAVE_UP
    assert files(parts.media) == []


async def test_old_task_is_given_up_without_a_download(parts: Parts, origin: Origin) -> None:
    t = await insert_succeeded(
        parts.gw, parts.user_id, [video(origin.url("video.mp4"))], age_ms=GIVE_UP_AFTER_MS + 1
    )
    assert await mirror_task(parts.gw, parts.mirror, t) is Outcome.GAVE_UP
    assert origin.hits["video.mp4"] == 0


class CountingFetcher:
    """Counts downloads and holds each one open until released, so two workers truly overlap."""

    def __init__(self) -> None:
        self.inner = AiohttpFetcher()
        self.opened = 0
        self.release = asyncio.Event()

    @contextlib.asynccontextmanager
    async def open(self, url: str) -> AsyncIterator[Fetched]:
        self.opened += 1
        await self.release.wait()
        async with self.inner.open(url) as got:
            yield got

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_two_workers_do_not_both_download(parts: Parts, origin: Origin) -> None:
    await insert_succeeded(parts.gw, parts.user_id, [video(origin.url("video.mp4"))])
    fetcher = CountingFetcher()
    mirror = type(parts.mirror)(
        store=parts.mirror.store, fetcher=fetcher, signer=parts.mirror.signer
    )
    a = MirrorWorker(parts.gw, mirror, owner="a")
    b = MirrorWorker(parts.gw, mirror, owner="b")
    try:
        runs = asyncio.gather(a.run_once(), b.run_once())
        await asyncio.sleep(0.05)
        fetcher.release.set()
        assert sorted(await runs) == [0, 1]
    finally:
        await fetcher.aclose()
    assert fetcher.opened == 1
    assert a.outcomes[Outcome.MIRRORED] + b.outcomes[Outcome.MIRRORED] == 1


async def test_only_one_writer_settles_the_row(parts: Parts, origin: Origin) -> None:
    """Even when two workers both downloaded (a lease ran out), the row is written once."""
    t = await insert_succeeded(parts.gw, parts.user_id, [video(origin.url("video.mp4"))])
    first, second = await asyncio.gather(
        mirror_task(parts.gw, parts.mirror, t), mirror_task(parts.gw, parts.mirror, t)
    )
    assert sorted([first.value, second.value]) == ["lost", "mirrored"]
    assert await mirror_task(parts.gw, parts.mirror, t) is Outcome.LOST
    row = await parts.gw.tasks.get(t.id)
    assert row is not None and row.origin_result_json == t.result_json
    assert (
        parts.media / media_key(t.id, 0)
    ).read_bytes() == MP4  # the loser did not delete the winner's file


async def test_a_crash_keeps_the_lease_until_it_expires(parts: Parts, origin: Origin) -> None:
    await insert_succeeded(parts.gw, parts.user_id, [video(origin.url("video.mp4"))])

    class Broken:
        def open(self, url: str) -> contextlib.AbstractAsyncContextManager[Fetched]:
            raise RuntimeError("bug")

        async def aclose(self) -> None:
            return None

    broken = type(parts.mirror)(
        store=parts.mirror.store, fetcher=Broken(), signer=parts.mirror.signer
    )
    worker = MirrorWorker(parts.gw, broken)
    assert await worker.run_once() == 1
    assert await worker.run_once() == 0  # no hot loop on a crashing task
    parts.clock.advance(2 * 0.3 + 61)  # the lease: two downloads' timeouts plus a margin
    assert await MirrorWorker(parts.gw, parts.mirror).run_once() == 1


async def test_disabled_mirroring_claims_nothing_but_still_applies_retention(
    tmp_path: Path, origin: Origin
) -> None:
    async with gateway_with_mirror(tmp_path, mirror_enabled=False) as p:
        await insert_succeeded(p.gw, p.user_id, [video(origin.url("video.mp4"))])
        old = p.media / "20250101" / "1" / "0.mp4"
        old.parent.mkdir(parents=True)
        old.write_bytes(b"x")
        os.utime(old, (p.clock() - 31 * 86_400,) * 2)
        assert await MirrorWorker(p.gw, p.mirror).run_once() == 0
        assert not old.exists() and origin.hits["video.mp4"] == 0


async def test_retention_sweep_runs_about_hourly(parts: Parts, origin: Origin) -> None:
    t = await insert_succeeded(parts.gw, parts.user_id, [video(origin.url("video.mp4"))])
    worker = MirrorWorker(parts.gw, parts.mirror)
    await worker.run_once()
    path = parts.media / media_key(t.id, 0)
    keep = parts.media / "20250101" / "2" / "0.mp4"
    keep.parent.mkdir(parents=True)
    keep.write_bytes(b"recent")
    stale = parts.clock() - parts.gw.settings.mirror_retention_days * 86_400 - 1
    os.utime(path, (stale, stale))

    await worker.run_once()
    assert path.exists()  # swept on the first pass already; the next sweep is due in an hour
    parts.clock.advance(3601)
    await worker.run_once()
    assert not path.exists() and not path.parent.exists()
    assert keep.exists()
    row = await parts.gw.tasks.get(t.id)
    assert row is not None and orjson.loads(row.result_json or "")[0]["url"] == "mirror:0"


async def test_run_loop_mirrors_and_stops(tmp_path: Path, origin: Origin) -> None:
    async with gateway_with_mirror(tmp_path, refresh_interval_seconds=0.02) as p:
        t = await insert_succeeded(p.gw, p.user_id, [video(origin.url("video.mp4"))])
        stop = asyncio.Event()
        loop = asyncio.create_task(MirrorWorker(p.gw, p.mirror).run(stop))
        try:
            for _ in range(250):
                row = await p.gw.tasks.get(t.id)
                if row is not None and row.origin_result_json is not None:
                    break
                await asyncio.sleep(0.02)
        finally:
            stop.set()
            await asyncio.wait_for(loop, 5)
        assert (p.media / media_key(t.id, 0)).read_bytes() == MP4
