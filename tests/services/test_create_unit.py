"""The create and failover path against in-memory stores (storage/memory.py) and a scripted Kling
behind httpx.MockTransport: no database, no migrations, no simulator process."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson
import pytest

from kling_gateway.crypto import SecretBox, secret_box
from kling_gateway.domain.ids import IdMinter
from kling_gateway.domain.models import DEFAULT_CAPABILITIES
from kling_gateway.domain.pricing import PriceTable
from kling_gateway.domain.task import TaskStatus
from kling_gateway.errors import KlingError
from kling_gateway.netguard import UrlGuard
from kling_gateway.observability.metrics import Telemetry
from kling_gateway.services.auth import Principal
from kling_gateway.services.background import Background
from kling_gateway.services.callback_urls import CallbackUrls
from kling_gateway.services.catalog import Catalog
from kling_gateway.services.channels import ChannelSet
from kling_gateway.services.prices import default_price_rows
from kling_gateway.services.wiring import Parts, Wiring, wire
from kling_gateway.storage.accounts import KeyRecord
from kling_gateway.storage.memory import MemoryTasks, MemoryUpstreams
from kling_gateway.storage.money import Close
from kling_gateway.storage.tasks import TaskRecord
from kling_gateway.storage.upstreams import UpstreamAccount, UpstreamKey
from kling_gateway.upstream.simulator.clock import ManualClock
from kling_gateway.upstream.transport import HttpxTransport
from tests.conftest import make_settings

BODY = {"model_name": "kling-v1", "prompt": "a cat", "duration": "5", "mode": "std"}
CREDITS = 1_000_000_000
HOSTS = {1: "http://a.test", 2: "http://b.test"}


@dataclass
class FakeKling:
    """Two accounts' worth of Kling: tasks by host and external id, and per-host scripts of what
    the next creates answer (an error code, or "timeout": created, then the reply is lost)."""

    tasks: dict[str, dict[str, str]] = field(
        default_factory=lambda: {h: {} for h in HOSTS.values()}
    )
    script: dict[str, list[int | str]] = field(default_factory=dict)
    creates: list[str] = field(default_factory=list)  # host of every create call
    on_create: list[TaskRecord | None] = field(default_factory=list)  # the row at each call
    store: MemoryTasks | None = None

    def handle(self, request: httpx.Request) -> httpx.Response:
        host = f"{request.url.scheme}://{request.url.host}"
        if request.method == "POST":
            return self._create(host, orjson.loads(request.content))
        ident = request.url.path.rsplit("/", 1)[-1]
        held = self.tasks[host]
        if ident in held:
            return self._ok(held[ident], ident)
        return httpx.Response(404, json={"code": 1203, "message": "task not found"})

    def _create(self, host: str, body: dict[str, str]) -> httpx.Response:
        external = body["external_task_id"]
        self.creates.append(host)
        if self.store is not None:
            self.on_create.append(self.store.rows.get(external))
        step = self.script.get(host, []).pop(0) if self.script.get(host) else None
        if isinstance(step, int):
            return httpx.Response(400, json={"code": step, "message": f"refused {step}"})
        if external in self.tasks[host]:
            return httpx.Response(400, json={"code": 1201, "message": "duplicate"})
        self.tasks[host][external] = f"up-{len(self.creates)}"
        if step == "timeout":
            raise httpx.ReadTimeout("reply lost", request=None)
        return self._ok(self.tasks[host][external], external)

    @staticmethod
    def _ok(upstream_id: str, external: str) -> httpx.Response:
        data = {
            "task_id": upstream_id,
            "task_status": "submitted",
            "task_info": {"external_task_id": external},
            "created_at": 1,
            "updated_at": 1,
        }
        return httpx.Response(200, json={"code": 0, "message": "", "data": data})

    def upstream_tasks(self, external: str) -> int:
        return sum(external in held for held in self.tasks.values())


@dataclass
class Unit:
    kling: FakeKling
    tasks: MemoryTasks
    wired: Wiring
    principal: Principal
    background: Background

    async def create(self, **extra: str) -> str:
        """One create, and the write its reply did not wait for (``reply_first``)."""
        data = await self.wired.creation.create(self.principal, orjson.dumps({**BODY, **extra}))
        await self.background.drain()
        return str(data["task_id"])

    def balance(self) -> int:
        return self.tasks.balances[self.principal.user_id]


def _account(box: SecretBox, account_id: int, priority: int) -> UpstreamAccount:
    key = UpstreamKey(
        account_id * 10,
        account_id,
        box.encrypt("ak"),
        box.encrypt("sk"),
        None,
        "…",
        True,
        None,
        None,
    )
    name = f"acc-{account_id}"
    return UpstreamAccount(account_id, name, HOSTS[account_id], True, priority, keys=(key,))


@pytest.fixture
async def unit(tmp_path: Path) -> AsyncIterator[Unit]:
    settings = make_settings(tmp_path, upstream="kling")
    box = secret_box(settings)
    clock = ManualClock()
    kling = FakeKling()
    tasks = MemoryTasks(balances={7: CREDITS})
    kling.store = tasks
    http = HttpxTransport(httpx.AsyncClient(transport=httpx.MockTransport(kling.handle)))
    upstreams = MemoryUpstreams([_account(box, 1, priority=10), _account(box, 2, priority=0)])
    telemetry = Telemetry()
    channels = ChannelSet(upstreams, box, http, settings, telemetry, tasks, clock=clock)
    await channels.reload()
    catalog = Catalog(DEFAULT_CAPABILITIES)
    parts = Parts(
        settings=settings,
        tasks=tasks,
        channels=channels,
        catalog=catalog,
        prices=PriceTable.from_rows(default_price_rows()),
        billing=True,
        limits=None,
        callbacks=CallbackUrls(None, b"k"),
        guard=UrlGuard(),
        ids=IdMinter(),
        telemetry=telemetry,
        background=Background(),
        clock=clock,
        rng=random.Random(1),
    )
    key = KeyRecord(7, 7, "u", "k", "aksk", "", "ak", None, None, None, False, 0)
    yield Unit(kling, tasks, wire(parts), Principal(key), parts.background)
    await parts.background.drain()
    await http.aclose()


async def test_the_reserve_and_the_row_exist_before_upstream_is_called(unit: Unit) -> None:
    task_id = await unit.create()
    (held,) = unit.kling.on_create
    assert held is not None and held.status == TaskStatus.QUEUED.value and held.reserved_micro > 0
    row = unit.tasks.rows[task_id]
    assert row.status == TaskStatus.SUBMITTED.value and row.upstream_task_id == "up-1"
    assert unit.balance() == CREDITS - row.reserved_micro
    history = orjson.loads(row.status_history or "[]")
    assert [(h["status"], h["by"]) for h in history] == [
        ("queued", "create"),
        ("submitted", "submit"),
    ]


async def test_an_account_refusal_that_proves_no_task_moves_on(unit: Unit) -> None:
    unit.kling.script[HOSTS[1]] = [1102]  # account out of resource packs
    task_id = await unit.create()
    assert unit.kling.creates == [HOSTS[1], HOSTS[2]]
    row = unit.tasks.rows[task_id]
    assert row.upstream_account_id == 2 and row.status == TaskStatus.SUBMITTED.value
    assert unit.kling.upstream_tasks(task_id) == 1


async def test_a_lost_reply_is_looked_up_never_sent_elsewhere(unit: Unit) -> None:
    unit.kling.script[HOSTS[1]] = ["timeout"]
    task_id = await unit.create()
    assert unit.kling.creates == [HOSTS[1]]  # account 2 never asked
    assert unit.kling.upstream_tasks(task_id) == 1
    row = unit.tasks.rows[task_id]
    assert row.upstream_account_id == 1 and row.upstream_task_id == "up-1"


async def test_a_client_retry_by_external_task_id_gets_the_same_task(unit: Unit) -> None:
    first = await unit.create(external_task_id="mine")
    balance = unit.balance()
    again = await unit.create(external_task_id="mine")
    assert again == first and len(unit.kling.creates) == 1
    assert unit.balance() == balance and len(unit.tasks.rows) == 1


async def test_a_retry_of_a_row_left_queued_attaches_the_task_upstream_holds(unit: Unit) -> None:
    """The first request died after upstream created the task but before the row learned it."""
    first = await unit.create(external_task_id="mine")
    row = unit.tasks.rows[first]
    assert await unit.tasks.transition(
        first, TaskStatus(row.status), status="queued", upstream_task_id=None
    )
    again = await unit.create(external_task_id="mine")
    # sent again to the account that may hold it (only), whose 1201 leads to the lookup
    assert again == first and set(unit.kling.creates) == {HOSTS[1]}
    row = unit.tasks.rows[first]
    assert row.status == TaskStatus.SUBMITTED.value and row.upstream_task_id == "up-1"
    assert unit.kling.upstream_tasks(first) == 1


async def test_a_request_refusal_rejects_and_refunds(unit: Unit) -> None:
    unit.kling.script[HOSTS[1]] = [1200]  # the request itself is refused
    with pytest.raises(KlingError) as err:
        await unit.create(external_task_id="bad")
    assert err.value.code == 1201  # the client's 400/1201, with upstream's message
    (row,) = unit.tasks.rows.values()
    assert row.status == TaskStatus.REJECTED.value and row.external_task_id is None
    assert [h["status"] for h in orjson.loads(row.status_history or "[]")] == ["queued", "rejected"]
    assert unit.balance() == CREDITS
    closes = [e for e in unit.tasks.ledger if isinstance(e, Close)]
    assert len(closes) == 1 and closes[0].reason == "refund"
    assert unit.kling.creates == [HOSTS[1]]  # a request fault is not the account's: no move on


async def test_no_balance_is_refused_before_anything_is_stored_or_sent(unit: Unit) -> None:
    unit.tasks.balances[7] = 0
    with pytest.raises(KlingError) as err:
        await unit.create()
    assert err.value.code == 1102 and not unit.tasks.rows and not unit.kling.creates
