"""What a failed upstream call proves, whose fault it is, and what the client sees: one table.

Each failure is read through ``refusal(code)`` once (the client keeps the row on its
``UpstreamError``); benching, failover and the refresher all act on that same row.

Transport outcomes arrive as codes too (kling-api.md §5): nothing reached upstream is 5001, no
answer after sending is 5002, an answer without a Kling body is 5000 (1200/1203 for a clean 4xx).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from ..errors import (
    ConcurrencyLimited,
    InvalidParameter,
    KlingError,
    PermissionDenied,
    RateLimited,
    UpstreamFailure,
)


class Fault(Enum):
    REQUEST = "request"  # the request itself is refused: answer the client, try nowhere else
    KEY = "key"  # 1000–1004: this key's credentials fail; cool it (the account if no other key)
    ACCOUNT = "account"  # 1100–1103, 1304: the account cannot work (arrears, permission, IP list)
    BUSY = "busy"  # 1302/1303: this account × model is full right now; next account, no cooldown
    UNREACHABLE = "unreachable"  # 5001 or no connection: next account, short cooldown
    UNKNOWN = "unknown"  # a task may exist: nobody is blamed until a lookup by our id settles it

    @property
    def fails_over(self) -> bool:
        """Another account may take the create: the refusal was the account's, not the request's."""
        return self not in (Fault.REQUEST, Fault.UNKNOWN)


@dataclass(frozen=True, slots=True)
class Answer:
    """The client's view of a refusal that ends a create: our wording, a Kling code, no upstream
    ids. Operator-side problems (credentials, balance, IP list) read as 5001: not the client's."""

    error: type[KlingError]
    text: str  # ``{message}`` is upstream's scrubbed message, or ``fallback`` when it is empty
    code: int | None = None  # None: the error class's own code
    fallback: str = ""

    def render(self, message: str) -> KlingError:
        text = self.text.format(message=message or self.fallback)
        return self.error(text) if self.code is None else self.error(text, code=self.code)


@dataclass(frozen=True, slots=True)
class Refusal:
    code: int
    absent: bool  # proves upstream made no task: sending elsewhere is safe
    fault: Fault
    transient: bool  # "not now" rather than "never": an accepted task waits and tries again
    answer: Answer
    duplicate: bool = False  # may mean "external_task_id exists": our task may be there after all

    def client_error(self, message: str) -> KlingError:
        return self.answer.render(message)


_UNAVAILABLE = Answer(UpstreamFailure, "upstream temporarily unavailable", 5001)
_REJECTED = Answer(InvalidParameter, "upstream rejected the request: {message}")
_NO_MODEL = Answer(InvalidParameter, "model_name: the model is not available upstream")
_NO_PERMISSION = Answer(PermissionDenied, "upstream account may not use this model")
_RATE = Answer(RateLimited, "Too many requests; upstream rate limit exceeded")
_PARALLEL = Answer(ConcurrencyLimited, "parallel task over resource pack limit")
_POLICY = "Trigger the content security policy of the platform"


def _absent(
    code: int,
    fault: Fault,
    answer: Answer = _UNAVAILABLE,
    *,
    transient: bool = False,
    duplicate: bool = False,
) -> Refusal:
    return Refusal(code, True, fault, transient, answer, duplicate)


def _unsure(code: int) -> Refusal:
    return Refusal(code, False, Fault.UNKNOWN, True, _UNAVAILABLE)


def _policy(code: int) -> Refusal:
    return _absent(code, Fault.REQUEST, Answer(KlingError, "{message}", code, _POLICY))


_ROWS: dict[int, Refusal] = {
    r.code: r
    for r in [
        *(_absent(c, Fault.KEY) for c in range(1000, 1005)),  # our credentials: operator side
        *(_absent(c, Fault.ACCOUNT) for c in (1100, 1101, 1102)),  # arrears, no resource pack
        _absent(1103, Fault.ACCOUNT, _NO_PERMISSION),
        _absent(1200, Fault.REQUEST, _REJECTED),  # also a clean 4xx without a Kling body
        # Kling's refusal of a duplicate external_task_id (undocumented; 1201 whenever observed,
        # and in the simulator): our task may exist, so a 1201 counts only after a lookup.
        _absent(1201, Fault.REQUEST, _REJECTED, duplicate=True),
        _absent(1202, Fault.REQUEST, _NO_MODEL),
        _absent(1203, Fault.REQUEST, _NO_MODEL),  # also a bare 404
        _policy(1300),
        _policy(1301),
        _absent(1302, Fault.BUSY, _RATE, transient=True),
        _absent(1303, Fault.BUSY, _PARALLEL, transient=True),
        _absent(1304, Fault.ACCOUNT),  # our IP is not on the account's allow-list
        _absent(5001, Fault.UNREACHABLE, transient=True),  # nothing sent, or Kling unavailable
        _unsure(5000),  # Kling's server error; a 5xx or 200 without a Kling body or task id
        _unsure(5002),  # sent, then no answer in time (read timeout, reset)
    ]
}


def refusal(code: int) -> Refusal:
    """The row for ``code``. Other 1xxx codes refuse the request (Kling made nothing); any other
    code is unknown and may hide a task."""
    row = _ROWS.get(code)
    if row is not None:
        return row
    return _absent(code, Fault.REQUEST) if 1000 <= code < 1400 else _unsure(code)


def transport_code(maybe_sent: bool) -> int:
    """A call that failed below HTTP: unreachable (5001) unless the request may have left (5002)."""
    return 5002 if maybe_sent else 5001


def bare_http_code(status: int) -> int:
    """An answer without a Kling envelope: only a clean 4xx proves the request was refused before
    Kling made anything; a proxy's HTML 502 or an empty 200 says nothing about the task."""
    if status >= 500 or status == 200:
        return 5000
    return 1203 if status == 404 else 1200
