"""Prometheus metrics that are counted as things happen (the DB-derived ones are in
``store_metrics.py``).

Two owners, because the two kinds of events have different lifetimes:

- ``HttpMetrics`` belongs to one ASGI app (its own ``CollectorRegistry``): requests
  by method, route template and status, and their latency. The route *template* is
  the label, never the raw path, so a scan of random URLs or a million task ids
  cannot grow the series count; unmatched paths share one label.
- ``Telemetry`` belongs to one ``Gateway`` and so to whatever runs it (the app's
  lifespan, the worker command): task status changes, upstream calls by account and
  outcome, webhook attempts. It registers nowhere by itself; the app exposes it by
  registering it as a collector into its own registry.

No module-level registry anywhere: tests build several apps in one process and each
must count alone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.metrics_core import Metric

from .context import CURRENT, current_request_id
from .logs import TRANSITIONS_LOGGER

# Seconds. The request path is sub-millisecond to tens of ms; upstream and webhooks reach seconds.
HTTP_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
CALL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
UNMATCHED_ROUTE = "unmatched"
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})

transitions_log = logging.getLogger(TRANSITIONS_LOGGER)


def method_label(method: str) -> str:
    """Any method a client invents would be a new series; the standard ones, else ``OTHER``."""
    return method if method in _METHODS else "OTHER"


class HttpMetrics:
    """Per request: one counter increment and one histogram observation, on cached
    label children."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "kgw_http_requests",
            "HTTP requests by method, route template and status code",
            ["method", "route", "code"],
            registry=registry,
        )
        self.latency = Histogram(
            "kgw_http_request_duration_seconds",
            "HTTP request latency by method and route template (first byte in to last byte out)",
            ["method", "route"],
            registry=registry,
            buckets=HTTP_BUCKETS,
        )
        # ``labels()`` takes a lock and builds a key each time; the children never
        # change, so keep them.
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe(self, method: str, route: str, code: int, seconds: float) -> None:
        key = (method, route, code)
        pair = self._children.get(key)
        if pair is None:
            pair = (
                self.requests.labels(method, route, str(code)),
                self.latency.labels(method, route),
            )
            self._children[key] = pair
        pair[0].inc()
        pair[1].observe(seconds)


UpstreamObserver = Callable[[str, str, float], None]


class Telemetry:
    """Counters of one gateway's work; a Prometheus collector, so an app registers it
    to expose it."""

    def __init__(self) -> None:
        self.transitions = Counter(
            "kgw_task_transitions",
            "Task status changes made by this process (compare-and-set winners only)",
            ["from_status", "to_status"],
            registry=None,
        )
        self.upstream_calls = Counter(
            "kgw_upstream_calls",
            "Calls to Kling by upstream account, operation (create|query) and outcome "
            "(ok; absent = proven not to have created anything; ambiguous = may have)",
            ["account", "op", "outcome"],
            registry=None,
        )
        self.upstream_latency = Histogram(
            "kgw_upstream_call_duration_seconds",
            "Latency of calls to Kling by upstream account and operation",
            ["account", "op"],
            registry=None,
            buckets=CALL_BUCKETS,
        )
        self.webhook_attempts = Counter(
            "kgw_webhook_attempts",
            "Outbound webhook send attempts by result (delivered; retry = failed, scheduled again; "
            "failed = given up)",
            ["result"],
            registry=None,
        )
        self.webhook_latency = Histogram(
            "kgw_webhook_attempt_duration_seconds",
            "Latency of outbound webhook send attempts",
            registry=None,
            buckets=CALL_BUCKETS,
        )
        self.channel_cooldowns = Counter(
            "kgw_upstream_account_cooldowns",
            "Upstream accounts (or keys) benched after a refusal, by account and kind "
            "(key | account | unreachable | manual)",
            ["account", "kind"],
            registry=None,
        )
        self._all = (
            self.channel_cooldowns,
            self.transitions,
            self.upstream_calls,
            self.upstream_latency,
            self.webhook_attempts,
            self.webhook_latency,
        )

    def collect(self) -> Iterable[Metric]:
        for metric in self._all:
            yield from metric.collect()

    def upstream_observer(self, account: str) -> UpstreamObserver:
        """The callback one account's KlingClient reports each call to: (HTTP method,
        outcome, seconds)."""

        children: dict[tuple[str, str], tuple[Any, Any]] = {}

        def observe(method: str, outcome: str, seconds: float) -> None:
            pair = children.get((method, outcome))
            if pair is None:
                op = "create" if method == "POST" else "query"
                pair = (
                    self.upstream_calls.labels(account, op, outcome),
                    self.upstream_latency.labels(account, op),
                )
                children[(method, outcome)] = pair
            pair[0].inc()
            pair[1].observe(seconds)
            ctx = CURRENT.get()
            if ctx is not None:
                ctx.upstream_s += seconds

        return observe

    def channel_cooldown(self, account: str, kind: str) -> None:
        self.channel_cooldowns.labels(account, kind).inc()

    def task_moved(self, task_id: str, from_status: str, to_status: str) -> None:
        """Called by ``services.transitions.move`` after its compare-and-set won:
        count it, log it."""
        self.transitions.labels(from_status, to_status).inc()
        if transitions_log.isEnabledFor(logging.INFO):
            extra = {"task_id": task_id, "from": from_status, "to": to_status}
            rid = current_request_id()
            if rid:
                extra["request_id"] = rid
            transitions_log.info("task transition", extra=extra)

    def webhook_attempt(self, state: str, latency_ms: int) -> None:
        """``state``: the delivery's state after the attempt (delivered | pending | failed)."""
        self.webhook_attempts.labels("retry" if state == "pending" else state).inc()
        self.webhook_latency.observe(latency_ms / 1000)
