"""The simulator's state and behaviour, independent of HTTP so tests can drive and
inspect it directly.

``app.state.sim`` is an instance of ``Simulator``. Tests typically use:
``sim.tasks_created(account)``, ``sim.external_id_count(ext_id)``,
``sim.duplicate_attempts[ext_id]``, ``sim.advance()`` after moving a fake clock, and
``await sim.callbacks.drain()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import orjson

from .auth import Authenticator
from .callbacks import CallbackDispatcher
from .config import SimulatorConfig
from .envelope import SimFailure
from .store import FAILED, STATUSES, SUCCEED, WATERMARK_SUFFIX, Task, TaskStore
from .validation import CreateSpec

logger = logging.getLogger("kling_gateway.upstream.simulator")

# Present in the legacy callback sample (kling-api.md §6) but not in query responses; resource-pack
# billing never touches the cash balance, hence zeros.
_BALANCE_DEDUCTION = {"quota": "0", "list_price": "0"}


class Simulator:
    def __init__(
        self,
        config: SimulatorConfig,
        clock: Callable[[], float],
        callback_client: httpx.AsyncClient | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.rng = random.Random(config.seed)
        self.auth = Authenticator(config, clock)
        self.callbacks = CallbackDispatcher(config, callback_client)
        self.store = TaskStore(config, self.rng, self._notify)
        self.counters: Counter[str] = Counter()
        self.duplicate_attempts: Counter[str] = Counter()  # external_task_id -> refused re-creates
        self.started_at = clock()
        self._ticker: asyncio.Task[None] | None = None

    # --- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        """Begin delivering callbacks and firing timed transitions. Called by the app's lifespan."""
        await self.callbacks.start()
        if self._ticker is None:
            self._ticker = asyncio.create_task(self._tick_forever())

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        await self.callbacks.stop()

    async def _tick_forever(self) -> None:
        while True:
            try:
                self.advance()
            except Exception:  # a bug here must not silently stop every future transition
                logger.exception("simulator timer failed")
            await asyncio.sleep(max(0.001, self.config.tick_seconds))

    def reset(self) -> None:
        """Forget all tasks and counters (benchmarks between runs). Queued callbacks
        still go out."""
        self.store.reset()
        self.counters.clear()
        self.duplicate_attempts.clear()

    # --- behaviour -------------------------------------------------------------------------------
    def advance(self) -> None:
        self.store.advance(self.clock())

    def roll(self, rate: float) -> bool:
        """Skip the RNG entirely at rate 0 so enabling one fault doesn't reshuffle
        the others' draws."""
        return rate > 0 and self.rng.random() < rate

    def create_task(self, account: str, spec: CreateSpec, make: Callable[..., Task] = Task) -> Task:
        """Kling's checks after body validation, in the order that keeps faults honest: refused and
        injected-error creates never make a task; only a successful check path reaches the store.
        ``make`` builds the task (other kinds pass their subclass)."""
        ext = spec.external_task_id
        if ext is not None and self.store.by_external(account, ext) is not None:
            self.counters["duplicates_refused"] += 1
            self.duplicate_attempts[ext] += 1
            raise SimFailure(1201, "external_task_id already exists")
        if self.roll(self.config.create_error_rate):
            self.counters["create_errors_injected"] += 1
            raise SimFailure(self.config.create_error_code)
        if self.store.active(account, spec.model) >= self.config.concurrency_per_model:
            self.counters["concurrency_refused"] += 1
            raise SimFailure(1303)
        task = self.store.create(account, spec, self.clock(), make)
        self._notify(task)
        return task

    def _notify(self, task: Task) -> None:
        url = task.spec.callback_url
        if url is None:
            return
        body = task.wire()
        if task.status in (SUCCEED, FAILED):
            body = {**body, "final_balance_deduction": _BALANCE_DEDUCTION}
        self.callbacks.enqueue(task.task_id, url, orjson.dumps(body))

    def video_task(self, name: str) -> Task | None:
        """The task whose result ``name`` (a video id, ``-wm`` for the watermarked copy) is, while
        it is still kept."""
        video_id = name.removesuffix(WATERMARK_SUFFIX)
        task = self.store.videos.get(video_id)
        if task is None or (name != video_id and not task.spec.watermark):
            return None
        if self.clock() - task.updated >= self.config.result_retention_seconds:
            return None
        return task

    def video_available(self, name: str) -> bool:
        return self.video_task(name) is not None

    # --- inspection (tests, benchmarks, /__sim/stats) --------------------------------------------
    def tasks_created(self, account: str | None = None) -> int:
        return self.store.count(account)

    def external_id_count(self, external_task_id: str, account: str | None = None) -> int:
        """Upstream tasks carrying this external id (all accounts unless one is named)."""
        if account is not None:
            return int(self.store.by_external(account, external_task_id) is not None)
        return self.store.external_counts[external_task_id]

    def task(self, task_id: str) -> Task | None:
        return self.store.tasks.get(task_id)

    def stats(self) -> dict[str, Any]:
        self.advance()
        return {
            "tasks_created": self.store.count(),
            "tasks_by_status": {status: self.store.status_counts[status] for status in STATUSES},
            "duplicates_refused": self.counters["duplicates_refused"],
            "concurrency_refused": self.counters["concurrency_refused"],
            "create_errors_injected": self.counters["create_errors_injected"],
            "ambiguous_injected": self.counters["ambiguous_injected"],
            "hangs_injected": self.counters["hangs_injected"],
            "get_errors_injected": self.counters["get_errors_injected"],
            "callbacks_sent": self.callbacks.sent,
            "callbacks_failed": self.callbacks.failed,
            "callbacks_pending": self.callbacks.pending,
            "callback_attempts": self.callbacks.attempts,
            "requests": self.counters["requests"],
        }
