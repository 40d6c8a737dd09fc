"""In-memory task table whose statuses are a pure function of the clock.

Every task's whole schedule (processing_at, done_at, fail or not) is fixed at creation. A min-heap
of upcoming transitions is drained by ``advance(now)``, which runs at the start of every request and
on the background timer; so reads are always current even without the timer (fake clocks), each
transition happens exactly once (one callback, one slot release), and idle cost is one comparison.
"""

from __future__ import annotations

import heapq
import itertools
import random
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .config import SimulatorConfig
from .mp4 import tiny_mp4
from .validation import CreateSpec

TEXT2VIDEO = "text2video"
SUBMITTED = "submitted"
PROCESSING = "processing"
SUCCEED = "succeed"
FAILED = "failed"
STATUSES = (SUBMITTED, PROCESSING, SUCCEED, FAILED)
WATERMARK_SUFFIX = "-wm"


@dataclass(slots=True, eq=False)
class Task:
    task_id: str
    account: str
    spec: CreateSpec
    created: float  # simulator-clock seconds
    processing_at: float
    done_at: float
    will_fail: bool
    failure_message: str
    status: str = SUBMITTED
    updated: float = 0.0
    video_id: str | None = None
    base_url: str = ""
    kind: str = TEXT2VIDEO  # the path segment it was created under, the only one that finds it

    @property
    def terminal(self) -> bool:
        return self.status in (SUCCEED, FAILED)

    def wire(self) -> dict[str, Any]:
        """Task object as in kling-api.md §4.3. Built per read rather than cached: a cached view
        would multiply per-task memory in large runs, for a saving lost in HTTP overhead."""
        spec = self.spec
        view: dict[str, Any] = {
            "task_id": self.task_id,
            "task_status": self.status,
            "task_status_msg": self.failure_message if self.status == FAILED else "",
            "task_info": {"external_task_id": spec.external_task_id}
            if spec.external_task_id
            else {},
            "created_at": int(self.created * 1000),
            "updated_at": int(self.updated * 1000),
        }
        if self.status == SUCCEED:
            video: dict[str, Any] = {
                "id": self.video_id,
                "url": f"{self.base_url}/results/{self.video_id}.mp4",
                "duration": f"{spec.duration}.1",
            }
            if spec.watermark:
                video["watermark_url"] = (
                    f"{self.base_url}/results/{self.video_id}{WATERMARK_SUFFIX}.mp4"
                )
            view["task_result"] = {"videos": [video]}
        view["watermark_info"] = {"enabled": spec.watermark}
        if self.terminal:
            view["final_unit_deduction"] = spec.units if self.status == SUCCEED else "0"
        return view

    def mp4(self) -> bytes:
        """The result's bytes; other kinds' tasks render their own length."""
        return tiny_mp4()

    def create_view(self) -> dict[str, Any]:
        """The create response's smaller ``data`` (§4.2)."""
        full = self.wire()
        keys = ("task_id", "task_status", "task_info", "created_at", "updated_at")
        return {key: full[key] for key in keys}


@dataclass(slots=True, frozen=True)
class Session:
    """An identify-face answer, which advanced-lip-sync builds on (kling-video-family.md §6)."""

    account: str
    created: float
    millis: int  # the video's length, which the lip-synced output keeps
    known: bool  # the simulator made that video; else its length is only assumed
    parent: dict[str, Any]  # the video as ``task_info.parent_video`` shows it


class TaskStore:
    def __init__(
        self, config: SimulatorConfig, rng: random.Random, on_transition: Callable[[Task], None]
    ) -> None:
        self._config = config
        self._rng = rng
        self._on_transition = on_transition
        self.reset()

    def reset(self) -> None:
        self.tasks: dict[str, Task] = {}
        self.videos: dict[str, Task] = {}
        self.sessions: dict[str, Session] = {}  # identify-face session_id -> its answer
        self.status_counts: Counter[str] = Counter()
        # account -> units of finished tasks
        self.units_used: defaultdict[str, float] = defaultdict(float)
        # external_task_id -> tasks made, all accounts
        self.external_counts: Counter[str] = Counter()
        self._per_account: Counter[str] = Counter()
        self._by_kind: dict[tuple[str, str], list[Task]] = {}  # (account, kind) -> oldest first
        self._by_external: dict[tuple[str, str], Task] = {}
        self._active: Counter[tuple[str, str]] = Counter()  # (account, model) -> non-terminal tasks
        self._due: list[tuple[float, int, Task]] = []
        self._order = itertools.count()
        self._id_base = self._rng.randrange(7 * 10**17, 9 * 10**17)
        self._id_seq = itertools.count(1)

    # --- queries ---------------------------------------------------------------------------------
    def find(self, account: str, task_or_external_id: str) -> Task | None:
        """Task ids win over external ids, as kling-api.md §8 suggests for the shared path slot."""
        task = self.tasks.get(task_or_external_id)
        if task is not None and task.account == account:
            return task
        return self._by_external.get((account, task_or_external_id))

    def by_external(self, account: str, external_task_id: str) -> Task | None:
        return self._by_external.get((account, external_task_id))

    def active(self, account: str, model: str) -> int:
        return self._active[(account, model)]

    def count(self, account: str | None = None) -> int:
        if account is None:
            return len(self.tasks)
        return self._per_account[account]

    def page(
        self, account: str, page_num: int, page_size: int, kind: str = TEXT2VIDEO
    ) -> list[Task]:
        """Newest first, one kind's tasks only, without copying the account's whole history."""
        tasks = self._by_kind.get((account, kind), [])
        end = len(tasks) - (page_num - 1) * page_size
        if end <= 0:
            return []
        return tasks[max(0, end - page_size) : end][::-1]

    # --- mutation --------------------------------------------------------------------------------
    def create(
        self, account: str, spec: CreateSpec, now: float, make: Callable[..., Task] = Task
    ) -> Task:
        """``make`` builds the task: ``Task`` for text2video, a subclass for the other kinds."""
        config = self._config
        processing_at = now + config.submitted_seconds
        rate = config.task_failure_rate
        task = make(
            task_id=str(self._id_base + next(self._id_seq)),
            account=account,
            spec=spec,
            created=now,
            processing_at=processing_at,
            done_at=processing_at + config.processing_seconds,
            will_fail=rate > 0 and self._rng.random() < rate,
            failure_message=config.task_failure_message,
            updated=now,
            base_url=config.public_base_url.rstrip("/"),
        )
        self.tasks[task.task_id] = task
        self._per_account[account] += 1
        self._by_kind.setdefault((account, task.kind), []).append(task)
        if spec.external_task_id:
            self._by_external[(account, spec.external_task_id)] = task
            self.external_counts[spec.external_task_id] += 1
        self._active[(account, spec.model)] += 1
        self.status_counts[SUBMITTED] += 1
        heapq.heappush(self._due, (task.processing_at, next(self._order), task))
        return task

    def advance(self, now: float) -> None:
        due = self._due
        while due and due[0][0] <= now:
            when, _, task = heapq.heappop(due)
            self.status_counts[task.status] -= 1
            if task.status == SUBMITTED:
                task.status = PROCESSING
                heapq.heappush(due, (task.done_at, next(self._order), task))
            else:
                self._finish(task)
            # scheduled instant, not "now": identical histories for any poll rhythm
            task.updated = when
            self.status_counts[task.status] += 1
            self._on_transition(task)

    def _finish(self, task: Task) -> None:
        spec = task.spec
        key = (task.account, spec.model)
        self._active[key] -= 1
        if not self._active[key]:
            del self._active[key]
        if task.will_fail:
            task.status = FAILED
            return
        task.status = SUCCEED
        task.video_id = str(uuid.UUID(int=self._rng.getrandbits(128), version=4))
        self.videos[task.video_id] = task
        self.units_used[task.account] += float(spec.units)
