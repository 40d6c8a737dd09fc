"""``install(app, gateway)``: the one call ``create_app`` makes to get metrics,
access logs and ``/metrics``.

Everything is built per app: its own ``CollectorRegistry`` holding the HTTP metrics, the running
gateway's ``Telemetry`` (looked up at scrape time, since the gateway is built later, in the
lifespan) and the DB gauges, read on each scrape. ``/metrics`` is unauthenticated, as Prometheus
expects; it carries counts and account names only, no user or task data. Keep it off the public
listener with the reverse proxy when that matters.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from fastapi import FastAPI, Request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.responses import Response

from .metrics import HttpMetrics, Telemetry
from .store_metrics import StoreCollector

log = logging.getLogger("kling_gateway.metrics")
METRICS_PATH = "/metrics"


# What a scrape reads from the running gateway, as protocols: observability sits below services
# (which report to Telemetry), so it names the parts it reads rather than importing them.
class _Channel(Protocol):
    @property
    def name(self) -> str: ...
    def unavailable(self, now_ms: int) -> str | None: ...


class _Channels(Protocol):
    def now_ms(self) -> int: ...
    def all(self) -> Sequence[_Channel]: ...


class Scraped(Protocol):
    @property
    def telemetry(self) -> Telemetry: ...
    @property
    def channels(self) -> _Channels | None: ...
    @property
    def engine(self) -> AsyncEngine: ...
    def now_ms(self) -> int: ...


class _GatewayCollector:
    """Exposes whichever gateway's Telemetry the app is serving, plus whether the DB read worked."""

    def __init__(self) -> None:
        self.telemetry: Telemetry | None = None
        self.channels: _Channels | None = None
        self.store_ok = True

    def collect(self) -> Iterable[Metric]:
        if self.telemetry is not None:
            yield from self.telemetry.collect()
        if self.channels is not None:
            usable = GaugeMetricFamily(
                "kgw_upstream_account_usable",
                "1 when an upstream account may take new tasks now, 0 when disabled, cooling down"
                " or out of usable keys (as this process sees it)",
                labels=["account"],
            )
            now = self.channels.now_ms()
            for channel in self.channels.all():
                usable.add_metric([channel.name], 0 if channel.unavailable(now) else 1)
            yield usable
        yield GaugeMetricFamily(
            "kgw_store_read_ok",
            "1 when this scrape could read the database-derived gauges, 0 when that read failed",
            value=1 if self.store_ok else 0,
        )


@dataclass(slots=True)
class Observability:
    registry: CollectorRegistry
    http: HttpMetrics
    store: StoreCollector
    gateway_metrics: _GatewayCollector = field(default_factory=_GatewayCollector)

    async def render(self, gw: Scraped) -> bytes:
        self.gateway_metrics.telemetry = gw.telemetry
        self.gateway_metrics.channels = gw.channels
        try:
            await self.store.refresh(gw.engine, gw.now_ms())
            self.gateway_metrics.store_ok = True
        except Exception:  # the DB being down must not hide the in-process metrics
            log.exception("metrics: reading the database-derived gauges failed")
            self.store.snapshot = None
            self.gateway_metrics.store_ok = False
        return generate_latest(self.registry)


def install(app: FastAPI, gateway: Callable[[], Scraped]) -> Observability:
    """Add ``GET /metrics`` to ``app``; the caller puts ``ObservabilityMiddleware`` with
    ``obs.http`` in front of everything else the app answers (http/app.py)."""
    registry = CollectorRegistry()
    obs = Observability(registry=registry, http=HttpMetrics(registry), store=StoreCollector())
    registry.register(obs.gateway_metrics)
    registry.register(obs.store)

    async def metrics(request: Request) -> Response:
        return Response(await obs.render(gateway()), media_type=CONTENT_TYPE_LATEST)

    app.add_api_route(METRICS_PATH, metrics, methods=["GET"], include_in_schema=False)
    app.state.observability = obs
    return obs
