"""The composition root: the gateway's parts, built once from Settings, and the task path's use
cases wired from them (wiring.py), which http/, worker/ and cli/ take from here.

Nothing here is global: ``serve``, the CLI and each test build their own ``Gateway`` (tests hand
in an ``httpx`` transport so the upstream is the in-process simulator or a ``MockTransport``).
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from ..crypto import SecretBox, secret_box
from ..domain.ids import IdMinter
from ..domain.models import DEFAULT_CAPABILITIES, CapabilityTable
from ..domain.pricing import PriceTable
from ..errors import ConfigError
from ..netguard import UrlGuard
from ..observability.metrics import Telemetry
from ..settings import Settings
from ..storage import db
from ..storage.accounts import AccountStore
from ..storage.hotpath import HotPath
from ..storage.limits import LimitStore
from ..storage.money import MoneyStatements, MoneyStore
from ..storage.tasks import TaskStore
from ..storage.upstreams import UpstreamKey, UpstreamStore
from ..upstream.transport import AiohttpTransport, HttpxTransport, Transport
from .auth import Authenticator
from .background import Background
from .callback_urls import CallbackUrls
from .catalog import Catalog
from .channels import Channel, ChannelSet, mask
from .inbound import Inbound
from .ledger import Ledger
from .limits import Limiter, LimitSettings
from .prices import load_prices
from .refresh import Refresher
from .submit import Submitter
from .tasks import Creation
from .transitions import Mover
from .wiring import Parts, Wiring, wire

log = logging.getLogger("kling_gateway.gateway")

SIMULATOR_ACCOUNT = "simulator"
DEFAULT_ACCOUNT = "default"
SIMULATOR_ACCESS_KEY = "sim-ak"
SIMULATOR_SECRET_KEY = "sim-sk"


def load_capabilities(settings: Settings) -> CapabilityTable:
    if settings.models_file is None:
        return DEFAULT_CAPABILITIES
    try:
        overrides = json.loads(settings.models_file.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"KGW_MODELS_FILE {settings.models_file}: cannot read JSON ({exc})"
        ) from exc
    if not isinstance(overrides, dict):
        raise ConfigError(
            f"KGW_MODELS_FILE {settings.models_file}: must hold a JSON object of models"
        )
    return DEFAULT_CAPABILITIES.with_overrides(overrides)


@dataclass(slots=True)
class Gateway:
    settings: Settings
    engine: AsyncEngine
    box: SecretBox
    accounts: AccountStore
    tasks: TaskStore
    upstreams: UpstreamStore
    auth: Authenticator
    catalog: Catalog
    http: Transport
    callbacks: CallbackUrls  # each task's own URL for Kling's callbacks (services/inbound.py)
    clock: Callable[[], float] = time.time
    hot: HotPath | None = None
    ids: IdMinter = field(default_factory=IdMinter)
    rng: random.Random = field(default_factory=random.Random)
    telemetry: Telemetry = field(
        default_factory=Telemetry
    )  # counters /metrics exposes (observability/)
    guard: UrlGuard = field(
        default_factory=UrlGuard
    )  # SSRF rules for every URL we post to or fetch
    money: MoneyStatements | None = None  # None when KGW_BILLING=false
    prices: PriceTable = field(default_factory=PriceTable)
    limits: Limiter | None = None
    channels: ChannelSet | None = None  # set by build_gateway
    background: Background = field(default_factory=Background)
    # The use cases, built on first use from the parts above and again after any part is swapped
    # (a reload's catalog or prices, a test's store): see __setattr__.
    _wired: Wiring | None = field(default=None, init=False, repr=False, compare=False)

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)
        if name != "_wired":
            object.__setattr__(self, "_wired", None)

    def _wiring(self) -> Wiring:
        wired = self._wired
        if wired is None:
            wired = wire(
                Parts(
                    settings=self.settings,
                    tasks=self.tasks,
                    channels=self.upstream,
                    catalog=self.catalog,
                    prices=self.prices,
                    billing=self.money is not None,
                    limits=self.limits,
                    callbacks=self.callbacks,
                    guard=self.guard,
                    ids=self.ids,
                    telemetry=self.telemetry,
                    background=self.background,
                    clock=self.clock,
                    rng=self.rng,
                )
            )
            object.__setattr__(self, "_wired", wired)
        return wired

    @property
    def creation(self) -> Creation:
        return self._wiring().creation

    @property
    def submitter(self) -> Submitter:
        return self._wiring().submitter

    @property
    def refresher(self) -> Refresher:
        return self._wiring().refresher

    @property
    def inbound(self) -> Inbound:
        return self._wiring().inbound

    @property
    def mover(self) -> Mover:
        return self._wiring().mover

    @property
    def ledger(self) -> Ledger:
        return self._wiring().ledger

    def after_reply(self, work: Coroutine[Any, Any, None], what: str) -> None:
        self.background.after_reply(work, what)

    async def drain(self) -> None:
        await self.background.drain()

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    @property
    def upstream(self) -> ChannelSet:
        if self.channels is None:
            raise ConfigError("upstream accounts are not loaded")
        return self.channels

    def primary(self) -> Channel:
        return self.upstream.primary()

    def upstream_for(self, account_id: int | None) -> Channel:
        return self.upstream.for_task(account_id)

    async def refresh_catalog(self) -> None:
        """Routes, prices and upstream accounts change through the CLI or the admin API in other
        processes; re-read them now and then."""
        self.catalog = Catalog(self.catalog.table, await self.upstreams.routes())
        if self.channels is not None:
            await self.channels.reload()
        if self.money is not None:
            self.prices = PriceTable.from_rows(await MoneyStore(self.engine).price_rows())

    async def seed_upstream(self) -> None:
        """Keep the accounts that settings define in step with them: the simulator's well-known pair
        in simulator mode, the KGW_KLING_* credentials (encrypted) as account "default" otherwise.
        Accounts added with the CLI or admin API are left as they are; the simulator never takes
        real traffic."""
        s = self.settings
        now = self.now_ms()
        existing = {a.name: a for a in await self.upstreams.accounts()}
        if s.use_simulator:
            others = [a for n, a in existing.items() if n != SIMULATOR_ACCOUNT and a.enabled]
            if s.upstream == "auto" and others:
                log.warning(
                    "no KGW_KLING_* credentials, but %d upstream account(s) are configured: "
                    "using them; the built-in simulator takes no traffic "
                    "(set KGW_UPSTREAM=kling to silence this)",
                    len(others),
                )
                if SIMULATOR_ACCOUNT in existing:
                    await self.upstreams.update_account(SIMULATOR_ACCOUNT, enabled=False)
                return
            sim = existing.get(SIMULATOR_ACCOUNT)
            await self.upstreams.upsert_account(
                name=SIMULATOR_ACCOUNT,
                base_url=f"http://127.0.0.1:{s.simulator_port}",
                now_ms=now,
                key=None
                if sim is not None and sim.keys
                else self._key(SIMULATOR_ACCESS_KEY, SIMULATOR_SECRET_KEY),
                hint=mask(SIMULATOR_ACCESS_KEY),
            )
            return
        if SIMULATOR_ACCOUNT in existing:
            await self.upstreams.update_account(SIMULATOR_ACCOUNT, enabled=False)
        if not s.has_kling_credentials:
            return  # accounts come from `kling-gateway channels add`

        def plain(v: SecretStr | None) -> str | None:
            return v.get_secret_value() if v is not None else None

        wanted = (plain(s.kling_access_key), plain(s.kling_secret_key), plain(s.kling_api_key))
        current = existing.get(DEFAULT_ACCOUNT)
        same = current is not None and [self._plain(k) for k in current.keys] == [wanted]
        await self.upstreams.upsert_account(
            name=DEFAULT_ACCOUNT,
            base_url=s.kling_base_url,
            now_ms=now,
            key=None if same else self._key(*wanted),
            hint=mask(wanted[0] or wanted[2] or ""),
        )

    def _key(
        self, ak: str | None, sk: str | None, api: str | None = None
    ) -> tuple[str | None, ...]:
        return tuple(self.box.encrypt(v) if v else None for v in (ak, sk, api))

    def _plain(self, key: UpstreamKey) -> tuple[str | None, ...]:
        return tuple(
            self.box.decrypt(v) if v else None
            for v in (key.access_key_enc, key.secret_key_enc, key.api_key_enc)
        )

    async def aclose(self) -> None:
        await self.drain()
        if self.limits is not None:
            await self.limits.aclose()
        await self.http.aclose()
        if self.hot is not None:
            await self.hot.close()
        await self.engine.dispose()


def make_transport(
    settings: Settings, transport: httpx.AsyncBaseTransport | None = None
) -> Transport:
    """aiohttp for real traffic (see transport.py for why); httpx when a test or script hands in an
    httpx transport (MockTransport, the simulator's ASGI app) or the operator asks for it."""
    if transport is None and settings.upstream_transport == "aiohttp":
        return AiohttpTransport(
            connect_timeout=settings.upstream_connect_timeout,
            read_timeout=settings.upstream_read_timeout,
            max_connections=settings.upstream_max_connections,
        )
    timeout = httpx.Timeout(
        connect=settings.upstream_connect_timeout,
        read=settings.upstream_read_timeout,
        write=settings.upstream_read_timeout,
        pool=settings.upstream_connect_timeout,
    )
    limits = httpx.Limits(
        max_connections=settings.upstream_max_connections,
        max_keepalive_connections=settings.upstream_max_connections,
    )
    return HttpxTransport(httpx.AsyncClient(timeout=timeout, limits=limits, transport=transport))


async def build_gateway(
    settings: Settings,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    clock: Callable[[], float] = time.time,
    migrate: bool = True,
    seed: bool = True,
) -> Gateway:
    """``seed``: write the settings' upstream accounts (serve, worker, db upgrade); other CLI
    commands leave them as they are, so a shell with other KGW_KLING_* cannot re-point a gateway."""
    engine = db.make_engine(settings.database_url)
    hot: HotPath | None = None
    try:
        if migrate:
            await db.upgrade(engine)
        box = secret_box(settings)
        hot = await HotPath.open(engine)
        accounts = AccountStore(engine)
        task_store = TaskStore(engine, hot)
        gw = Gateway(
            settings=settings,
            engine=engine,
            box=box,
            accounts=accounts,
            tasks=task_store,
            hot=hot,
            upstreams=UpstreamStore(engine),
            auth=Authenticator(
                accounts,
                box,
                clock,
                ttl=settings.key_cache_seconds,
                leeway=settings.jwt_leeway_seconds,
                max_lifetime=settings.jwt_max_lifetime_seconds,
            ),
            catalog=Catalog(load_capabilities(settings)),
            http=make_transport(settings, transport),
            clock=clock,
            callbacks=CallbackUrls.from_settings(settings),
            guard=UrlGuard.from_settings(settings),
            money=MoneyStatements(hot) if settings.billing else None,
        )
    except BaseException:  # a half-built gateway must not leave connections open
        if hot is not None:
            await hot.close()
        await engine.dispose()
        raise
    try:
        gw.limits = Limiter(engine, clock, LimitSettings.from_settings(settings))
        if settings.billing:
            await load_prices(MoneyStore(engine), settings.prices_file, gw.now_ms())
        if seed:
            await gw.seed_upstream()
        gw.channels = ChannelSet(
            gw.upstreams,
            box,
            gw.http,
            settings,
            gw.telemetry,
            LimitStore(engine, user=False, key=False, upstream=True),
            clock=clock,
            rng=gw.rng,
        )
        await gw.refresh_catalog()
    except BaseException:
        await gw.aclose()
        raise
    return gw
