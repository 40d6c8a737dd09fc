"""Callback delivery (kling-api.md §6): bare task objects POSTed on every status change.

Each task gets its own sequential "lane" so its submitted → processing → terminal
notifications arrive in order even when a delivery is being retried, while lanes of
different tasks run concurrently (a single global queue would serialise a 10k-task
benchmark behind one slow receiver). The semaphore bounds sockets, not lanes, so a
lane sleeping between retries holds no connection slot.

Signatures use the wall clock, not the simulator clock: receivers check ``webhook-timestamp``
against their own real time (standardwebhooks rejects > 5 min skew), and a test's fake clock must
not make valid deliveries look stale.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from standardwebhooks import Webhook

from ..transport import AiohttpTransport, HttpxTransport, Transport
from .config import SimulatorConfig

logger = logging.getLogger("kling_gateway.upstream.simulator.callbacks")

CONTENT_TYPE = "application/json; charset=utf-8"


@dataclass(slots=True)
class _Message:
    url: str
    body: bytes
    msg_id: str  # stable across retries, as Standard Webhooks asks, so receivers can de-duplicate


class CallbackDispatcher:
    def __init__(
        self,
        config: SimulatorConfig,
        client: httpx.AsyncClient | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._config = config
        # An httpx client handed in (tests: MockTransport / ASGI) is used as is;
        # otherwise aiohttp, which costs a fraction of httpx's CPU per POST — at 10k
        # tasks × 3 callbacks that decides the backlog.
        self._client: Transport | None = HttpxTransport(client) if client is not None else None
        self._owns_client = client is None
        self._wall_clock = wall_clock
        self._queues: dict[str, deque[_Message]] = {}
        self._lanes: dict[str, asyncio.Task[None]] = {}
        self._semaphore: asyncio.Semaphore | None = None
        self._webhook: tuple[str, Webhook] | None = None
        self._running = False
        self.sent = 0
        self.failed = 0
        self.attempts = 0

    @property
    def pending(self) -> int:
        return sum(len(queue) for queue in self._queues.values())

    def enqueue(self, lane: str, url: str, body: bytes) -> None:
        """Queue one notification. Before ``start()`` it waits; delivery begins once running."""
        self._queues.setdefault(lane, deque()).append(
            _Message(url, body, f"msg_{uuid.uuid4().hex}")
        )
        if self._running and lane not in self._lanes:
            self._lanes[lane] = asyncio.create_task(self._run_lane(lane))

    async def start(self) -> None:
        if self._running:
            return
        if self._client is None:
            timeout = self._config.callback_timeout_seconds
            self._client = AiohttpTransport(
                connect_timeout=timeout,
                read_timeout=timeout,
                max_connections=self._config.callback_concurrency,
            )
            self._owns_client = True
        self._semaphore = asyncio.Semaphore(max(1, self._config.callback_concurrency))
        self._running = True
        for lane in list(self._queues):
            if lane not in self._lanes:
                self._lanes[lane] = asyncio.create_task(self._run_lane(lane))

    async def stop(self) -> None:
        """Undelivered messages stay queued (a later ``start()`` resumes them);
        sockets are closed."""
        self._running = False
        lanes = list(self._lanes.values())
        for task in lanes:
            task.cancel()
        await asyncio.gather(*lanes, return_exceptions=True)
        self._lanes.clear()
        if self._owns_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    async def drain(self) -> None:
        """Wait until every queued notification was delivered or given up on (tests, benchmarks)."""
        while self._lanes:
            await asyncio.gather(*list(self._lanes.values()), return_exceptions=True)

    async def _run_lane(self, lane: str) -> None:
        queue = self._queues[lane]
        try:
            while queue:
                await self._deliver(queue[0])
                queue.popleft()
        finally:
            self._lanes.pop(lane, None)
            if not queue:
                self._queues.pop(lane, None)

    def _headers(self, message: _Message) -> dict[str, str]:
        headers = {"content-type": CONTENT_TYPE}
        secret = self._config.webhook_secret
        if secret:
            if self._webhook is None or self._webhook[0] != secret:
                self._webhook = (secret, Webhook(secret))
            now = int(self._wall_clock())
            signature: str = self._webhook[1].sign(
                message.msg_id, datetime.fromtimestamp(now, tz=UTC), message.body.decode()
            )
            headers["webhook-id"] = message.msg_id
            headers["webhook-timestamp"] = str(now)
            headers["webhook-signature"] = signature
        return headers

    async def _deliver(self, message: _Message) -> None:
        assert self._client is not None and self._semaphore is not None
        retries = max(0, self._config.callback_retries)
        for attempt in range(retries + 1):
            self.attempts += 1
            try:
                async with self._semaphore:
                    status, _ = await self._client.request(
                        "POST", message.url, self._headers(message), message.body
                    )
                if 200 <= status < 300:
                    self.sent += 1
                    return
                problem = f"HTTP {status}"
            except Exception as exc:  # any failure is the receiver's problem: log, retry, then drop
                problem = f"{type(exc).__name__}: {exc}"
            if attempt < retries:
                logger.info("callback to %s failed (%s); retrying", message.url, problem)
                await asyncio.sleep(self._config.callback_retry_delay_seconds * (2**attempt))
        self.failed += 1
        logger.warning(
            "callback to %s dropped after %d attempts (%s)", message.url, retries + 1, problem
        )
