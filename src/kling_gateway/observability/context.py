"""The request being served, reachable from code that has no ``Request`` (a status
change, a log line).

A ``ContextVar`` rather than a parameter because the code that logs a task transition is three
layers below the route and is also run by workers, where there is no request; threading an optional
id through every service call would touch all of them. The var holds a small mutable object, so a
value set deep in the handler (the public task id) is seen by the middleware even if something
copied the context on the way.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from contextvars import ContextVar
from typing import Any

# Where the handler leaves the public task id it answered with (``envelope.ok``);
# read by the access log.
TASK_ID_KEY = "task_id"


class RequestContext:
    __slots__ = ("scope", "upstream_s")

    def __init__(self, scope: MutableMapping[str, Any]) -> None:
        self.scope = scope
        # Seconds this request spent waiting on Kling (every call, failovers
        # included): the access line shows it beside the total, so the gateway's own
        # share of a slow request can be read per request.
        self.upstream_s = 0.0

    @property
    def request_id(self) -> str | None:
        # Minted by RequestIdMiddleware into the shared scope after this object was
        # made, so read lazily.
        state = self.scope.get("state")
        return state.get("request_id") if state else None

    @property
    def task_id(self) -> str | None:
        state = self.scope.get("state")
        value = state.get(TASK_ID_KEY) if state else None
        return value if isinstance(value, str) else None


CURRENT: ContextVar[RequestContext | None] = ContextVar("kling_gateway_request", default=None)


def current_request_id() -> str | None:
    ctx = CURRENT.get()
    return ctx.request_id if ctx is not None else None
