"""The gateway's parts, built once from Settings and passed to every use case.

Nothing here is global: ``serve``, the CLI and each test build their own ``Gateway`` (tests hand in an
``httpx`` transport so the upstream is the in-process simulator or a ``MockTransport``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from ..crypto import SecretBox, load_master_key, secret_box
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
from ..storage.money import MoneyStatements, MoneyStore
from ..storage.tasks import TaskStore
from ..storage.upstreams import UpstreamAccount, UpstreamStore
from ..upstream.auth import Authorizer, Credentials
from ..upstream.client import KlingClient
from ..upstream.transport import AiohttpTransport, HttpxTransport, Transport
from .auth import Authenticator
from .catalog import Catalog
from .limits import Limiter, LimitSettings

_CALLBACK_LABEL = b"kling-gateway inbound callback token v1"
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
        raise ConfigError(f"KGW_MODELS_FILE {settings.models_file}: cannot read JSON ({exc})") from exc
    if not isinstance(overrides, dict):
        raise ConfigError(f"KGW_MODELS_FILE {settings.models_file}: must hold a JSON object of models")
    return DEFAULT_CAPABILITIES.with_overrides(overrides)


@dataclass(slots=True)
class Upstream:
    account_id: int
    name: str
    client: KlingClient


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
    clock: Callable[[], float] = time.time
    hot: HotPath | None = None
    ids: IdMinter = field(default_factory=IdMinter)
    rng: random.Random = field(default_factory=random.Random)
    telemetry: Telemetry = field(default_factory=Telemetry)  # counters /metrics exposes (observability/)
    callback_key: bytes = b""  # HMAC key for inbound callback URLs (services/inbound.py)
    guard: UrlGuard = field(default_factory=UrlGuard)  # SSRF rules for every URL we post to or fetch
    money: MoneyStatements | None = None  # None when KGW_BILLING=false
    prices: PriceTable = field(default_factory=PriceTable)
    limits: Limiter | None = None
    _clients: dict[int, Upstream] = field(default_factory=dict)

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def primary(self) -> Upstream:
        if not self._clients:
            raise ConfigError("no upstream account is configured")
        return next(iter(self._clients.values()))

    def upstream_for(self, account_id: int | None) -> Upstream:
        if account_id is not None and account_id in self._clients:
            return self._clients[account_id]
        return self.primary()

    async def refresh_catalog(self) -> None:
        """Routes and prices change through the CLI in other processes; re-read them now and then."""
        self.catalog = Catalog(self.catalog.table, await self.upstreams.routes())
        if self.money is not None:
            self.prices = PriceTable.from_rows(await MoneyStore(self.engine).price_rows())

    async def load_upstreams(self) -> None:
        """(Re)build one KlingClient per enabled account, decrypting credentials only here."""
        wanted = SIMULATOR_ACCOUNT if self.settings.use_simulator else DEFAULT_ACCOUNT
        clients: dict[int, Upstream] = {}
        for acc in await self.upstreams.accounts():
            if acc.enabled and acc.name == wanted:
                clients[acc.id] = Upstream(acc.id, acc.name, self._client(acc))
        self._clients = clients

    def _client(self, acc: UpstreamAccount) -> KlingClient:
        def dec(v: str | None) -> str | None:
            return self.box.decrypt(v) if v else None

        creds = Credentials(dec(acc.access_key_enc), dec(acc.secret_key_enc), dec(acc.api_key_enc))
        observer = self.telemetry.upstream_observer(acc.name)
        return KlingClient(self.http, acc.base_url, Authorizer(creds, self.clock), observer=observer)

    async def seed_upstream(self) -> None:
        """Store the operator's credentials from settings (encrypted) as the default account, or the
        simulator's well-known pair when running against the simulator."""
        s = self.settings
        now = self.now_ms()
        if s.use_simulator:
            await self.upstreams.upsert_account(
                name=SIMULATOR_ACCOUNT,
                base_url=f"http://127.0.0.1:{s.simulator_port}",
                now_ms=now,
                access_key_enc=self.box.encrypt(SIMULATOR_ACCESS_KEY),
                secret_key_enc=self.box.encrypt(SIMULATOR_SECRET_KEY),
            )
            return

        def enc(v: object) -> str | None:
            secret = getattr(v, "get_secret_value", None)
            return self.box.encrypt(secret()) if secret else None

        await self.upstreams.upsert_account(
            name=DEFAULT_ACCOUNT,
            base_url=s.kling_base_url,
            now_ms=now,
            access_key_enc=enc(s.kling_access_key),
            secret_key_enc=enc(s.kling_secret_key),
            api_key_enc=enc(s.kling_api_key),
        )

    async def aclose(self) -> None:
        if self.limits is not None:
            await self.limits.aclose()
        await self.http.aclose()
        if self.hot is not None:
            await self.hot.close()
        await self.engine.dispose()


def make_transport(settings: Settings, transport: httpx.AsyncBaseTransport | None = None) -> Transport:
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
) -> Gateway:
    engine = db.make_engine(settings.database_url)
    hot: HotPath | None = None
    try:
        if migrate:
            await db.upgrade(engine)
        box = secret_box(settings)
        hot = await HotPath.open(engine)
        accounts = AccountStore(engine)
        gw = Gateway(
            settings=settings,
            engine=engine,
            box=box,
            accounts=accounts,
            tasks=TaskStore(engine, hot),
            hot=hot,
            upstreams=UpstreamStore(engine),
            auth=Authenticator(
                accounts, box, clock, ttl=settings.key_cache_seconds, leeway=settings.jwt_leeway_seconds
            ),
            catalog=Catalog(load_capabilities(settings)),
            http=make_transport(settings, transport),
            clock=clock,
            callback_key=hmac.new(load_master_key(settings), _CALLBACK_LABEL, hashlib.sha256).digest(),
            guard=UrlGuard.from_settings(settings),
            money=MoneyStatements(hot, engine.dialect.name) if settings.billing else None,
        )
    except BaseException:  # a half-built gateway must not leave connections open
        if hot is not None:
            await hot.close()
        await engine.dispose()
        raise
    try:
        gw.limits = Limiter(gw, LimitSettings.from_settings(settings))
        if settings.billing:
            from .money import load_prices  # money imports this module

            await load_prices(gw, MoneyStore(engine))
        await gw.refresh_catalog()
        await gw.seed_upstream()
        await gw.load_upstreams()
    except BaseException:
        await gw.aclose()
        raise
    return gw
