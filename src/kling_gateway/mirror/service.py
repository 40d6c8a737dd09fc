"""Result mirroring use cases: copy a succeeded task's videos into our store, render their public
links, and forget them after the retention period.

Why mirror at all: Kling deletes results after 30 days, and its URLs embed the upstream task id,
which the gateway otherwise never shows a client. So when mirroring is on, a client only ever sees
gateway links.

A succeeded task goes through three states (see rows.py for how they are stored):

* **pending** (``origin_result_json`` NULL): ``result_json`` holds upstream's videos. With mirroring
  on, clients are already given gateway links; the results route streams those from the origin until
  the copy lands, so a client downloading right after ``succeed`` neither fails nor learns the
  upstream URL.
* **mirrored**: ``result_json`` holds ``mirror:<slot>`` markers where the URLs were and
  ``origin_result_json`` the upstream videos (operators only). Markers, not URLs, because every link
  is signed at read time with a fresh expiry, and because any code path that renders ``result_json``
  raw (admin views, old code) then cannot leak a Kling URL.
* **given up** (too large, gone at the origin, or still failing a day after ``succeed``):
  ``origin_result_json`` is set so the task is never picked again; ``result_json`` keeps upstream's
  URLs, which is then the only way the client can still get its video.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine

from ..domain.ids import created_ms, looks_like_public_id
from ..domain.task import TaskStatus
from ..netguard import UrlGuard
from ..settings import Settings
from ..storage.tasks import TaskRecord
from .fetch import AiohttpFetcher, Fetcher, MirrorError, download
from .rows import MirrorRows
from .signing import UrlSigner, expiry, signed_url, signer_for, slot
from .storage import LocalDirStore, MediaStore

log = logging.getLogger("kling_gateway.mirror")

MARKER = "mirror:"
# Transient failures are retried for a day after succeed, at intervals growing with the task's age
# (half of it, between 30 s and an hour): no attempt counter is needed, and a dead origin costs ~30
# attempts.
GIVE_UP_AFTER_MS = 24 * 3600 * 1000
MIN_RETRY_MS = 30_000
MAX_RETRY_MS = 3600_000


class Signing(Protocol):
    """What rendering links reads (the Gateway has it): mirror/ sits below services/."""

    @property
    def settings(self) -> Settings: ...
    @property
    def clock(self) -> Callable[[], float]: ...


class Host(Signing, Protocol):
    """What mirroring and the sweep read besides ``Mirror`` (the Gateway has it)."""

    @property
    def engine(self) -> AsyncEngine: ...
    def now_ms(self) -> int: ...


class Outcome(enum.Enum):
    MIRRORED = "mirrored"
    GAVE_UP = "gave_up"
    RETRY = "retry"  # transient failure; the row is left pending with a not-before time
    LOST = "lost"  # another worker settled the task first; this one wrote nothing


@dataclass(slots=True)
class Mirror:
    """What mirroring needs beyond the Gateway, built once per process (see ``build_mirror``)."""

    store: MediaStore
    fetcher: Fetcher
    signer: UrlSigner

    async def aclose(self) -> None:
        await self.fetcher.aclose()


def build_mirror(
    settings: Settings, *, fetcher: Fetcher | None = None, store: MediaStore | None = None
) -> Mirror:
    """Pass ``fetcher`` to choose how origin URLs are reached (e.g. an ``AiohttpFetcher`` over the
    outbound-guarded session); the default is an aiohttp session behind the SSRF guard
    (KGW_OUTBOUND_ALLOW), which ``aclose`` closes."""
    return Mirror(
        store=store if store is not None else LocalDirStore(settings.mirror_dir),
        fetcher=fetcher
        if fetcher is not None
        else AiohttpFetcher(guard=UrlGuard.from_settings(settings)),
        signer=signer_for(settings),
    )


def media_key(task_id: str, index: int, watermark: bool = False) -> str:
    """``<UTC day of the task's creation>/<task id>/<slot>.mp4``: a folder a day stays small."""
    day = (
        time.strftime("%Y%m%d", time.gmtime(created_ms(task_id) / 1000))
        if looks_like_public_id(task_id)
        else "x"
    )
    return f"{day}/{task_id}/{slot(index, watermark)}.mp4"


def _sources(videos: list[dict[str, Any]]) -> list[tuple[int, bool, str]]:
    found: list[tuple[int, bool, str]] = []
    for index, video in enumerate(videos):
        for watermark, field in ((False, "url"), (True, "watermark_url")):
            url = video.get(field)
            if isinstance(url, str) and url:
                found.append((index, watermark, url))
    return found


def _marked(videos: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for index, video in enumerate(videos):
        copy = dict(video)
        for watermark, field in ((False, "url"), (True, "watermark_url")):
            if copy.get(field):
                copy[field] = MARKER + slot(index, watermark)
        out.append(copy)
    return out


async def mirror_task(gw: Host, mirror: Mirror, record: TaskRecord) -> Outcome:
    """Download every video (and watermarked copy) of a pending task, then settle the row once."""
    s = gw.settings
    rows = MirrorRows(gw.engine)
    origin = record.result_json or "[]"
    videos: list[dict[str, Any]] = orjson.loads(origin)
    now = gw.now_ms()
    age = now - record.updated_at
    if age > GIVE_UP_AFTER_MS:
        log.info("task %s succeeded too long ago to mirror; keeping the upstream URLs", record.id)
        return await _settle(rows, record.id, origin, origin, Outcome.GAVE_UP)
    stored: list[str] = []
    try:
        for index, watermark, url in _sources(videos):
            key = media_key(record.id, index, watermark)
            await download(
                mirror.fetcher,
                url,
                mirror.store,
                key,
                max_bytes=s.mirror_max_bytes,
                timeout=s.mirror_timeout_seconds,
            )
            stored.append(key)
    except (MirrorError, OSError) as exc:
        for key in stored:  # all or nothing: a half-mirrored task would mix gateway and Kling links
            await mirror.store.delete(key)
        permanent = isinstance(exc, MirrorError) and exc.permanent
        delay = min(MAX_RETRY_MS, max(MIN_RETRY_MS, age // 2))
        if permanent or age + delay > GIVE_UP_AFTER_MS:
            log.warning(
                "mirroring task %s failed for good (%s); keeping the upstream URLs", record.id, exc
            )
            return await _settle(rows, record.id, origin, origin, Outcome.GAVE_UP)
        log.info("mirroring task %s failed (%s); retrying in %d s", record.id, exc, delay // 1000)
        await rows.retry_later(record.id, now + delay)
        return Outcome.RETRY
    mirrored = orjson.dumps(_marked(videos)).decode()
    # On LOST the files stay: another worker settled first and, if it mirrored, wrote the same keys.
    return await _settle(rows, record.id, mirrored, origin, Outcome.MIRRORED)


async def _settle(
    rows: MirrorRows, task_id: str, result: str, origin: str, outcome: Outcome
) -> Outcome:
    if await rows.settle(task_id, result_json=result, origin_result_json=origin):
        return outcome
    return Outcome.LOST


def base_url_for(settings: Settings, request_base: str | None) -> str:
    """``public_base_url`` when set (behind a proxy the request's own host may be internal), else
    the base the request came in on, else where ``serve`` listens (webhook payloads have no
    request)."""
    return settings.public_base_url or (
        request_base or f"http://{settings.host}:{settings.port}"
    ).rstrip("/")


def public_videos(
    gw: Signing, record: TaskRecord, base_url: str | None
) -> list[dict[str, Any]] | None:
    """``task_result.videos`` as a client must see it now; None when the task has no result to show.

    Mirrored tasks (and pending ones while mirroring is on) get freshly signed gateway links;
    anything else (mirroring off, or given up) shows what is stored."""
    if record.status != TaskStatus.SUCCEED.value or not record.result_json:
        return None
    videos: list[dict[str, Any]] = orjson.loads(record.result_json)
    if record.origin_result_json is None:
        if not gw.settings.mirror_enabled:
            return videos
    elif MARKER not in record.result_json:
        return videos  # given up
    base = base_url_for(gw.settings, base_url)
    expires = expiry(gw.clock(), gw.settings.mirror_url_ttl_seconds)
    signer = signer_for(gw.settings)
    out = []
    for index, video in enumerate(videos):
        copy = dict(video)
        for watermark, field in ((False, "url"), (True, "watermark_url")):
            if copy.get(field):
                copy[field] = signed_url(
                    signer, base, record.id, index, expires, watermark=watermark
                )
        out.append(copy)
    return out


def stored_value(record: TaskRecord, index: int, watermark: bool) -> str | None:
    """What ``result_json`` holds for one slot: a ``mirror:`` marker, an upstream URL, or None."""
    if not record.result_json:
        return None
    videos = orjson.loads(record.result_json)
    if not isinstance(videos, list) or index >= len(videos):
        return None
    value = videos[index].get("watermark_url" if watermark else "url")
    return value if isinstance(value, str) and value else None


async def sweep(gw: Host, mirror: Mirror) -> int:
    """Delete stored videos (and abandoned temp files) older than ``mirror_retention_days``.

    Rows are left alone: their links then answer 404, as Kling's own do once it deletes a result."""
    cutoff = gw.clock() - gw.settings.mirror_retention_days * 86_400
    deleted = 0
    for key in await mirror.store.older_than(cutoff):
        if await mirror.store.delete(key):
            deleted += 1
    if deleted:
        log.info("retention: deleted %d mirrored files", deleted)
    return deleted
