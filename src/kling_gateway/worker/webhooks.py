"""The webhook sender: delivers queued task events to each client's ``callback_url``.

Requests never wait for a callback: a status change only writes a ``webhook_deliveries`` row, and
this worker sends it later. ``run_once()`` claims one batch of due rows (under a lease, so a second
worker or node never sends the same event at the same time), posts them concurrently, and records
each outcome: 2xx is delivered; anything else (3xx included — redirects are not followed, a receiver
must answer itself), a timeout, or a refused connection is retried with exponential backoff and
jitter until the event is ``webhook_max_age_seconds`` old, then it is given up as ``failed``.

Semantics are at-least-once: a receiver that took a delivery but answered too late gets it again,
with the same ``webhook-id`` to deduplicate on (as Kling's own callbacks expect, kling-api.md §6).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from typing import Protocol

import aiohttp

from ..domain.schedule import webhook_retry_delay
from ..netguard import UrlGuard, UrlRefused, guarded_session
from ..services.gateway import Gateway
from ..services.webhooks import deliveries, signed_headers, user_secret
from ..storage.deliveries import DELIVERED, FAILED, PENDING, Delivery, Outcome

log = logging.getLogger("kling_gateway.webhooks")

# A claimed row stays ours this much longer than one send may take: a slow send is not taken over.
LEASE_MARGIN_SECONDS = 60.0
MAX_RESPONSE_READ = (
    64 * 1024
)  # read (and drop) this much of an answer so the connection can be reused


class Sender(Protocol):
    """Posts one webhook. Returns the HTTP status; raises on any transport failure (DNS, refused,
    TLS, timeout). The seam lets tests, and an SSRF-guarded sender, replace the default."""

    # ``timeout`` is for the HTTP client's own timer; the worker also enforces it (asyncio.timeout).
    async def post(self, url: str, body: bytes, headers: dict[str, str], timeout: float) -> int: ...  # noqa: ASYNC109


class AiohttpSender:
    """The default sender. ``connector_factory`` (called inside the running loop) is where a guarded
    resolver or connector can be plugged in; cookies and proxy environment variables are ignored."""

    def __init__(
        self,
        *,
        max_connections: int = 16,
        connector_factory: Callable[[], aiohttp.BaseConnector] | None = None,
        guard: UrlGuard | None = None,
    ) -> None:
        self._max_connections = max_connections
        self._connector_factory = connector_factory
        self._guard = guard  # SSRF: private targets refused at connect time, DNS rebinding included
        self._session: aiohttp.ClientSession | None = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._guard is not None and (self._session is None or self._session.closed):
            self._session = guarded_session(
                self._guard,
                timeout=aiohttp.ClientTimeout(total=None),
                limit=self._max_connections,
                field="callback_url",
            )
        if self._session is None or self._session.closed:
            connector = (
                self._connector_factory()
                if self._connector_factory is not None
                else aiohttp.TCPConnector(limit=self._max_connections)
            )
            self._session = aiohttp.ClientSession(
                connector=connector, cookie_jar=aiohttp.DummyCookieJar(), trust_env=False
            )
        return self._session

    async def post(self, url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:  # noqa: ASYNC109
        async with self._get_session().post(
            url,
            data=body,
            headers=headers,
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as resp:
            with contextlib.suppress(aiohttp.ClientError):
                await resp.content.read(MAX_RESPONSE_READ)
            return resp.status

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class WebhookWorker:
    def __init__(
        self,
        gw: Gateway,
        *,
        sender: Sender | None = None,
        rng: random.Random | None = None,
        idle_seconds: float = 1.0,
    ) -> None:
        self.gw = gw
        settings = gw.settings
        self._owned: AiohttpSender | None = None
        if sender is None:
            sender = self._owned = AiohttpSender(
                max_connections=settings.webhook_concurrency, guard=gw.guard
            )
        self.sender: Sender = sender
        self._rng = rng if rng is not None else random.Random()
        self._store = deliveries(gw)
        self._timeout = settings.webhook_timeout_seconds
        self._lease_ms = int((self._timeout + LEASE_MARGIN_SECONDS) * 1000)
        self._max_age_ms = int(settings.webhook_max_age_seconds * 1000)
        self._batch = settings.webhook_concurrency
        self._idle = idle_seconds

    async def run_once(self) -> int:
        """Claim and send one batch; returns how many deliveries were attempted."""
        batch = await self._store.claim(self.gw.now_ms(), self._lease_ms, self._batch)
        if batch:
            secrets: dict[int, asyncio.Task[str]] = {}
            await asyncio.gather(*(self._deliver(d, secrets) for d in batch))
        return len(batch)

    async def _deliver(self, d: Delivery, secrets: dict[int, asyncio.Task[str]]) -> None:
        try:
            outcome = await self._attempt(d, secrets)
            self.gw.telemetry.webhook_attempt(outcome.status, outcome.latency_ms)
            if not await self._store.record(d, outcome):
                log.info("delivery %s changed while it was being sent; its new state stands", d.id)
        except (
            Exception
        ):  # one broken row must not stop the batch; its lease expires and it comes back
            log.exception("delivery %s could not be recorded", d.id)

    async def _attempt(self, d: Delivery, secrets: dict[int, asyncio.Task[str]]) -> Outcome:
        loop = asyncio.get_running_loop()
        attempted_at = self.gw.now_ms()
        started = loop.time()
        status: int | None = None
        error: str | None = None
        try:
            if d.user_id not in secrets:  # one secret lookup per user per batch
                secrets[d.user_id] = asyncio.ensure_future(user_secret(self.gw, d.user_id))
            secret = await asyncio.shield(secrets[d.user_id])
            headers = signed_headers(secret, d.id, int(self.gw.clock()), d.payload)
            async with asyncio.timeout(self._timeout):
                status = await self.sender.post(d.url, d.payload.encode(), headers, self._timeout)
            if not 200 <= status < 300:
                error = f"HTTP {status}"
        except TimeoutError:
            error = f"timed out after {self._timeout:g} s"
        except (
            UrlRefused
        ) as exc:  # a private or internal target: retrying cannot make it deliverable
            latency_ms = int((loop.time() - started) * 1000)
            return Outcome(attempted_at, latency_ms, None, exc.reason, FAILED, None)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}".rstrip(": ")
        latency_ms = int((loop.time() - started) * 1000)
        return self._decide(d, attempted_at, latency_ms, status, error)

    def _decide(
        self, d: Delivery, attempted_at: int, latency_ms: int, status: int | None, error: str | None
    ) -> Outcome:
        if error is None:
            return Outcome(attempted_at, latency_ms, status, None, DELIVERED, None)
        now = self.gw.now_ms()
        deadline = d.created_at + self._max_age_ms
        if now >= deadline:
            log.warning(
                "giving up on delivery %s to %s after %d attempts", d.id, d.url, d.attempts + 1
            )
            return Outcome(attempted_at, latency_ms, status, error, FAILED, None)
        delay_ms = int(webhook_retry_delay(d.attempts + 1, rng=self._rng) * 1000)
        # The last retry lands on the deadline itself rather than being skipped as too far out.
        return Outcome(
            attempted_at, latency_ms, status, error, PENDING, min(now + delay_ms, deadline)
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Send until ``stop`` is set; idle ``idle_seconds`` after a pass short of a full batch."""
        try:
            while not stop.is_set():
                try:
                    n = await self.run_once()
                except Exception:
                    log.exception("webhook pass failed")
                    n = 0
                if n < self._batch:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), self._idle)
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        if self._owned is not None:
            await self._owned.aclose()
