"""KlingClient: create / get / list against Kling's legacy text2video API, returning our types.

All I/O goes through one ``Transport`` (transport.py; pooled, with timeouts), which is the seam: the
in-process simulator, ``httpx.MockTransport`` fakes and the real API all plug in there.

Failures are sorted by what they prove about the task (``UpstreamError.outcome``, read from the
refusal table in domain/refusals.py, whose row the error carries as ``refusal``):

    ABSENT     the request cannot have created a task (connect failed, 1xxx rejection, 5001)
    AMBIGUOUS  it may have (timeout or reset after sending, 5000, 5002, a non-Kling 5xx)

so callers know when a retry is safe and when they must first look the task up by
``external_task_id``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import httpx
import orjson

from ..domain.refusals import Refusal, bare_http_code, refusal, transport_code
from .auth import Authorizer
from .transport import HttpxTransport, Transport, TransportError

TEXT2VIDEO_PATH = "/v1/videos/text2video"

# Lookarounds, not \b: CJK characters count as word characters, and Kling's CN
# messages glue ids to them.
_UPSTREAM_ID = re.compile(
    r"(?<![0-9])[0-9]{12,}(?![0-9])|(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{20,}(?![A-Za-z0-9_-])"
)


class Outcome(Enum):
    ABSENT = "absent"
    AMBIGUOUS = "ambiguous"


def outcome_of(code: int) -> Outcome:
    return Outcome.ABSENT if refusal(code).absent else Outcome.AMBIGUOUS


class UpstreamError(Exception):
    def __init__(self, outcome: Outcome, code: int, message: str, http_status: int = 0) -> None:
        super().__init__(f"{code}: {message}")
        self.outcome = outcome
        self.code = code
        self.message = message
        self.http_status = http_status
        self.refusal: Refusal = refusal(code)  # read once here; benching and failover share it

    @property
    def not_found(self) -> bool:
        return self.code == 1203 or (self.http_status == 404 and self.code in (0, 1202))


def scrub(message: str) -> str:
    """Upstream messages may quote upstream ids; clients must never see one."""
    return _UPSTREAM_ID.sub("[id]", message)[:300]


@dataclass(frozen=True, slots=True)
class UpstreamTask:
    task_id: str
    status: str
    status_msg: str
    external_task_id: str | None
    created_at: int
    updated_at: int
    videos: list[dict[str, Any]] = field(default_factory=list)
    unit_deduction: str | None = None

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> UpstreamTask:
        info = data.get("task_info") or {}
        result = data.get("task_result") or {}
        videos = result.get("videos") if isinstance(result, dict) else None
        unit = data.get("final_unit_deduction")
        return cls(
            task_id=str(data["task_id"]),
            status=str(data.get("task_status", "")),
            status_msg=str(data.get("task_status_msg") or ""),
            external_task_id=info.get("external_task_id") if isinstance(info, dict) else None,
            created_at=int(data.get("created_at") or 0),
            updated_at=int(data.get("updated_at") or 0),
            videos=[v for v in videos if isinstance(v, dict)] if isinstance(videos, list) else [],
            unit_deduction=str(unit) if unit is not None else None,
        )


# Told of every call: (HTTP method, "ok" | "absent" | "ambiguous", seconds); metrics hang here.
CallObserver = Callable[[str, str, float], None]


class KlingClient:
    __slots__ = ("_auth", "_base", "_http", "_observer")

    def __init__(
        self,
        http: Transport | httpx.AsyncClient,
        base_url: str,
        authorizer: Authorizer,
        *,
        observer: CallObserver | None = None,
    ) -> None:
        self._observer = observer
        # An httpx.AsyncClient is accepted as is (tests and scripts); anything else is a Transport.
        self._http: Transport = (
            HttpxTransport(http) if isinstance(http, httpx.AsyncClient) else http
        )
        self._base = base_url.rstrip("/")
        self._auth = authorizer

    async def create(self, body: dict[str, Any], external_task_id: str) -> UpstreamTask:
        payload = dict(body)
        payload["external_task_id"] = external_task_id
        data = await self._call("POST", TEXT2VIDEO_PATH, body=orjson.dumps(payload))
        if not isinstance(data, dict) or "task_id" not in data:
            raise UpstreamError(
                Outcome.AMBIGUOUS, 5000, "upstream create answered without a task id"
            )
        return UpstreamTask.from_wire(data)

    async def get(self, task_or_external_id: str) -> UpstreamTask:
        data = await self._call("GET", f"{TEXT2VIDEO_PATH}/{task_or_external_id}")
        if not isinstance(data, dict) or "task_id" not in data:
            raise UpstreamError(Outcome.AMBIGUOUS, 5000, "upstream query answered without a task")
        return UpstreamTask.from_wire(data)

    async def find_by_external_id(self, external_task_id: str) -> UpstreamTask | None:
        """The task Kling holds under our id, ``None`` only when Kling confirms there is none."""
        try:
            return await self.get(external_task_id)
        except UpstreamError as exc:
            if exc.not_found:
                return None
            raise

    async def list(self, page: int = 1, size: int = 30) -> list[UpstreamTask]:
        data = await self._call("GET", f"{TEXT2VIDEO_PATH}?pageNum={page}&pageSize={size}")
        return [UpstreamTask.from_wire(d) for d in data] if isinstance(data, list) else []

    async def costs(self) -> Any:
        """``GET /account/costs`` for the last day: free, authenticated and cheap, hence the health
        probe (Kling asks for at most one per second per account)."""
        now = int(time.time() * 1000)
        return await self._call(
            "GET", f"/account/costs?start_time={now - 86_400_000}&end_time={now}"
        )

    async def _call(self, method: str, path: str, *, body: bytes | None = None) -> Any:
        if self._observer is None:
            return await self._exchange(method, path, body)
        started = time.perf_counter()
        try:
            data = await self._exchange(method, path, body)
        except UpstreamError as exc:
            self._observer(method, exc.outcome.value, time.perf_counter() - started)
            raise
        self._observer(method, "ok", time.perf_counter() - started)
        return data

    async def _exchange(self, method: str, path: str, body: bytes | None) -> Any:
        headers = {"Authorization": self._auth.header(), "Content-Type": "application/json"}
        try:
            status, raw = await self._http.request(method, self._base + path, headers, body)
        except TransportError as exc:
            code = transport_code(exc.maybe_sent)
            what = "did not answer" if exc.maybe_sent else "unreachable"
            raise UpstreamError(outcome_of(code), code, f"upstream {what} ({exc})") from exc
        try:
            envelope = orjson.loads(raw)
        except orjson.JSONDecodeError:
            envelope = None
        if not isinstance(envelope, dict) or not isinstance(envelope.get("code"), int):
            code = bare_http_code(status)
            message = f"upstream answered HTTP {status} without a Kling body"
            raise UpstreamError(outcome_of(code), code, message, status)
        code = envelope["code"]
        if code != 0:
            message = scrub(str(envelope.get("message", "")))
            raise UpstreamError(outcome_of(code), code, message, status)
        return envelope.get("data")
