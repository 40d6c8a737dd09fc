"""The soak's clients: submitters that behave like a careful Kling client, plus GET
and list traffic.

A careful client gives every logical task its own ``external_task_id`` and, when it does not learn
the outcome of a create (connection refused or reset because the gateway was killed, a client-side
timeout, a 5xx) or is told "not now" (429), sends the *same* body with the *same* id again until it
gets an answer. That is what makes the gateway's idempotency the thing under test: such retries must
never make a second task, upstream or in the gateway.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass

import aiohttp
import orjson

PATH = "/kling/v1/videos/text2video"
_RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


@dataclass
class Logical:
    """One task as the client sees it: its own id, and the gateway's id once a create
    answered 200."""

    ext: str
    body: bytes
    task_id: str | None = None
    outcome: str = "pending"  # accepted | gave_up | refused (a 4xx other than 429)
    attempts: int = 0
    detail: str = ""


class Pacer:
    """Spreads creates evenly at ``rate`` per second across all submitters (no bursts after a stall:
    missed slots are dropped, so a restart does not turn into a thundering herd of new tasks)."""

    def __init__(self, rate: float) -> None:
        self._gap = 1.0 / rate
        self._next = time.monotonic()

    async def wait(self) -> None:
        now = time.monotonic()
        self._next = max(self._next + self._gap, now)
        await asyncio.sleep(self._next - now)


class Clients:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        key: str,
        run_id: str,
        *,
        timeout_s: float,
        give_up_s: float,
    ) -> None:
        self.session = session
        self.url = base_url + PATH
        self.headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        self.run_id = run_id
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.give_up_s = give_up_s
        self.tasks: list[Logical] = []
        self.accepted: list[Logical] = []
        self.tally: Counter[str] = Counter()  # what the clients saw, by kind
        self.anomalies: list[str] = []
        self._seq = 0
        self._rng = random.Random(run_id)

    def new_task(self) -> Logical:
        self._seq += 1
        ext = f"soak-{self.run_id}-{self._seq}"
        body = {
            "model_name": "kling-v2-6",
            "prompt": f"soak {ext}",
            "duration": "5",
            "external_task_id": ext,
        }
        task = Logical(ext, orjson.dumps(body))
        self.tasks.append(task)
        return task

    async def _call(
        self, method: str, url: str, body: bytes | None = None
    ) -> tuple[int, dict[str, object]]:
        """(HTTP status, envelope); status 0 = no answer (refused, reset, timed out)."""
        try:
            async with self.session.request(
                method, url, data=body, headers=self.headers, timeout=self.timeout
            ) as resp:
                raw = await resp.read()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError):
            return 0, {}
        try:
            envelope = orjson.loads(raw)
        except orjson.JSONDecodeError:
            envelope = {}
        return status, envelope if isinstance(envelope, dict) else {}

    async def submit(self, task: Logical) -> None:
        """Create until answered: 200 → accepted; 0/5xx/429 → same body, same id,
        after a backoff."""
        deadline = time.monotonic() + self.give_up_s
        delay = 0.2
        while True:
            task.attempts += 1
            status, env = await self._call("POST", self.url, task.body)
            code = env.get("code")
            self.tally[
                f"submit {status or 'no answer'}" + (f"/{code}" if status not in (0, 200) else "")
            ] += 1
            if status == 200 and code == 0 and isinstance(env.get("data"), dict):
                data = env["data"]
                assert isinstance(data, dict)
                task.task_id, task.outcome = str(data["task_id"]), "accepted"
                self.accepted.append(task)
                return
            if status != 0 and status not in _RETRYABLE_STATUS:
                task.outcome, task.detail = (
                    "refused",
                    f"HTTP {status} code {code}: {env.get('message')}",
                )
                self.anomalies.append(f"create {task.ext} refused: {task.detail}")
                return
            if time.monotonic() > deadline:
                task.outcome, task.detail = "gave_up", f"last answer HTTP {status} code {code}"
                return
            await asyncio.sleep(delay * (0.5 + self._rng.random()))
            delay = min(delay * 2, 2.0)

    async def submitter(self, pacer: Pacer, stop: asyncio.Event) -> None:
        """New logical tasks until ``stop``; the task in hand is always finished,
        never abandoned."""
        while not stop.is_set():
            await pacer.wait()
            if stop.is_set():
                return
            await self.submit(self.new_task())

    async def getter(self, stop: asyncio.Event, pause_s: float) -> None:
        """Reads of accepted tasks, alternately by our task id and by the client's external id."""
        while not stop.is_set():
            await asyncio.sleep(pause_s)
            if not self.accepted:
                continue
            task = self._rng.choice(self.accepted)
            ident = task.task_id if self._rng.random() < 0.5 else task.ext
            status, env = await self._call("GET", f"{self.url}/{ident}")
            self.tally[f"get {status or 'no answer'}"] += 1
            if status == 404:
                self.anomalies.append(f"GET {ident} (accepted as {task.task_id}) answered 404")
            elif status == 200:
                data = env.get("data")
                if isinstance(data, dict) and data.get("task_id") != task.task_id:
                    self.anomalies.append(
                        f"GET {ident} answered task {data.get('task_id')}, not {task.task_id}"
                    )

    async def lister(self, stop: asyncio.Event, pause_s: float) -> None:
        while not stop.is_set():
            await asyncio.sleep(pause_s)
            page = self._rng.randint(1, 5)
            status, _ = await self._call("GET", f"{self.url}?pageNum={page}&pageSize=30")
            self.tally[f"list {status or 'no answer'}"] += 1

    async def final_state(self, task: Logical) -> tuple[int, str | None, str | None]:
        """(HTTP status, task id, wire status) of an accepted task, asked by the client's own id."""
        for _ in range(20):  # the gateway is up by now; retry only a stray connection hiccup
            status, env = await self._call("GET", f"{self.url}/{task.ext}")
            if status != 0 and status < 500:
                data = env.get("data")
                if status == 200 and isinstance(data, dict):
                    return status, str(data.get("task_id")), str(data.get("task_status"))
                return status, None, None
            await asyncio.sleep(0.5)
        return 0, None, None
