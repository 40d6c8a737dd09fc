"""Three gateway processes on one PostgreSQL database, one of them SIGKILLed in the middle of a load.

What a crash may leave behind: a task row inserted but never sent upstream, a task created upstream whose
answer never reached the row, a poller lease that nobody will release, a client whose request vanished.
The test proves each is recovered, and nothing is done twice:

- every create the clients made was accepted (a lost answer is retried on another node with the same
  ``external_task_id``, which must return the same task, never a second one or an error);
- every accepted task reaches ``succeed`` or ``failed`` on its own, the killed node's leased tasks
  included, and reads the same on every node;
- upstream holds exactly one task per accepted task (its ``external_task_id`` is our public id, 1:1);
- the ledger balances: one reserve and one close per task, charged = reserve on success and 0 on
  failure, and the user's balance equals the sum of their ledger entries;
- the killed node, restarted on its port, serves again and takes its share of new tasks;
- and before all that, three nodes started at once on an empty database all come up (one migrates and
  bootstraps, the others wait for it).

Runs in the normal suite (marker ``multinode``, deselect with ``-m "not multinode"``) and skips loudly
without PostgreSQL: SQLite cannot be shared by several hosts, so a cluster means PostgreSQL.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from kling_gateway.storage.db import make_engine
from kling_gateway.storage.tables import ledger_entries, tasks, users
from tests.conftest import POSTGRES_URL, TEXT2VIDEO, _postgres_reset, postgres_available
from tests.multinode.cluster import Cluster, sim_token

pytestmark = pytest.mark.multinode

TASKS = 500
KILL_AFTER = 150  # answered creates before the victim dies
RESTART_AFTER = 350  # creates sent while it is down; the rest go to all three nodes again
CONCURRENCY = 20
VICTIM = 1
SETTLE_SECONDS = 60.0
HANG_SECONDS = 1.0  # upstream answers held around the kill; below the gateways' 3 s read timeout
CREDITS = "100000"
ACTIVE = ("queued", "submitted", "processing")

# Fast upstream renders with some failures, so refunds are exercised as well as settlements.
SIM_ARGS = (
    "--submitted-seconds",
    "0.2",
    "--processing-seconds",
    "0.6",
    "--failure-rate",
    "0.1",
    "--concurrency",
    "100000",
)
# Poll soon and often (render scale 0: first look at first_poll_seconds), and let a dead node's leases
# and half-finished creates come back within seconds rather than the production defaults' 30 s.
GATEWAY_ENV = {
    "KGW_POLL_RENDER_SCALE": "0",
    "KGW_FIRST_POLL_SECONDS": "0.3",
    "KGW_MAX_POLL_SECONDS": "1",
    "KGW_REFRESH_INTERVAL_SECONDS": "0.2",
    "KGW_POLL_JITTER": "0",
    "KGW_LEASE_SECONDS": "4",
    "KGW_REFRESH_BATCH": "10",  # small claims, so every node's poller holds some of the work
    "KGW_UPSTREAM_READ_TIMEOUT": "3",
}


@dataclass
class Submission:
    index: int
    task_id: str | None = None  # our public id, from the answer that was accepted
    node: int | None = None  # the node that answered
    lost_answers: int = 0  # requests sent to a node that died before answering
    refused: str | None = None

    @property
    def ext_id(self) -> str:
        return f"mn-{self.index:04d}"

    def body(self) -> dict[str, Any]:
        return {
            "model_name": "kling-v2-6",
            "mode": "std",
            "duration": "5",
            "prompt": f"multinode task {self.index}",
            "external_task_id": self.ext_id,
        }


@dataclass
class Load:
    """Round-robin creates; a node that refuses connections or drops the request is skipped, and the
    same body goes to the next node: an idempotent retry, as a client behind a load balancer would."""

    cluster: Cluster
    client: httpx.AsyncClient
    answered: int = 0
    connect_refused: int = 0
    by_node: Counter[int] = field(default_factory=Counter)

    async def run(self, subs: Sequence[Submission], on_answer: Callable[[int], None] | None = None) -> None:
        pending = iter(subs)

        async def worker() -> None:
            for sub in pending:
                await self.submit(sub)
                self.answered += 1
                if on_answer is not None:
                    on_answer(self.answered)

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))

    async def submit(self, sub: Submission) -> None:
        nodes = len(self.cluster.ports)
        headers = {"Authorization": f"Bearer {self.cluster.api_key}"}
        for attempt in range(2 * nodes):
            node = (sub.index + attempt) % nodes
            url = self.cluster.gateway_url(node) + TEXT2VIDEO
            try:
                resp = await self.client.post(url, json=sub.body(), headers=headers, timeout=20.0)
            except httpx.ConnectError:
                self.connect_refused += 1  # nothing was sent
                continue
            except httpx.TransportError:
                sub.lost_answers += 1  # sent; the node may have created the task before it died
                continue
            payload = resp.json()
            if resp.status_code == 200 and payload.get("code") == 0:
                sub.task_id, sub.node = payload["data"]["task_id"], node
                self.by_node[node] += 1
            else:
                sub.refused = f"node {node}: HTTP {resp.status_code} {resp.text[:300]}"
            return
        sub.refused = "no node answered"


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    if not await postgres_available():
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL} (set KGW_TEST_POSTGRES_URL)")
    await _postgres_reset(POSTGRES_URL)
    c = Cluster(tmp_path, POSTGRES_URL, sim_args=SIM_ARGS, gateway_env=GATEWAY_ENV)
    try:
        async with httpx.AsyncClient() as client:
            await c.sim.start()
            # A cold start: all nodes at once on the empty database (migration lock, one bootstrap).
            await asyncio.gather(*(c.start_gateway(i, client) for i in range(len(c.ports))))
            await c.sim.wait_ready(client)
        await c.create_funded_key("load", CREDITS)
        yield c
    finally:
        await c.close()


async def sim_config(client: httpx.AsyncClient, cluster: Cluster, **patch: float) -> None:
    resp = await client.post(f"{cluster.sim_url}/__sim/config", json=patch)
    assert resp.json()["code"] == 0, resp.text


async def active_leases_of(engine: AsyncEngine, pid: int) -> list[str]:
    """Tasks a dead process still holds: its poller's worker id is ``host:pid:random``."""
    stmt = select(tasks.c.id).where(tasks.c.lease_owner.like(f"%:{pid}:%"), tasks.c.status.in_(ACTIVE))
    async with engine.connect() as conn:
        return list((await conn.execute(stmt)).scalars())


async def wait_terminal(engine: AsyncEngine, cluster: Cluster) -> dict[str, int]:
    deadline = time.monotonic() + SETTLE_SECONDS
    stmt = select(tasks.c.status, func.count()).group_by(tasks.c.status)
    while True:
        async with engine.connect() as conn:
            counts = {status: int(n) for status, n in (await conn.execute(stmt)).all()}
        if not any(counts.get(s) for s in ACTIVE):
            return counts
        if time.monotonic() > deadline:
            raise AssertionError(
                f"tasks still unfinished after {SETTLE_SECONDS:.0f} s: {counts}\n{cluster.logs()}"
            )
        await asyncio.sleep(0.5)


async def upstream_tasks(client: httpx.AsyncClient, cluster: Cluster) -> list[dict[str, Any]]:
    """Every task the simulator holds for the gateway's account, through Kling's own list route."""
    found: list[dict[str, Any]] = []
    headers = {"Authorization": f"Bearer {sim_token()}"}
    for page in range(1, 100):
        resp = await client.get(
            f"{cluster.sim_url}/v1/videos/text2video",
            params={"pageNum": page, "pageSize": 500},
            headers=headers,
        )
        data = resp.json()["data"]
        if not data:
            break
        found.extend(data)
    return found


async def client_views(
    client: httpx.AsyncClient, cluster: Cluster, subs: Sequence[Submission]
) -> Counter[str]:
    """Read every task by the client's own id, round-robin over all nodes: the status each one shows."""
    sem = asyncio.Semaphore(CONCURRENCY)
    headers = {"Authorization": f"Bearer {cluster.api_key}"}

    async def read(sub: Submission) -> str:
        async with sem:
            url = f"{cluster.gateway_url(sub.index % len(cluster.ports))}{TEXT2VIDEO}/{sub.ext_id}"
            data = (await client.get(url, headers=headers, timeout=20.0)).json()["data"]
        assert data["task_id"] == sub.task_id, f"{sub.ext_id} reads as {data['task_id']}, not {sub.task_id}"
        return str(data["task_status"])

    return Counter(await asyncio.gather(*(read(s) for s in subs)))


async def check_ledger(engine: AsyncEngine, rows: Sequence[Any]) -> int:
    """One reserve and one close per task, the right charge, and balance = Σ ledger; returns Σ charged."""
    async with engine.connect() as conn:
        entries = (await conn.execute(select(ledger_entries))).all()
        balances = dict((await conn.execute(select(users.c.id, users.c.balance_micro))).all())
    kinds = Counter((e.task_id, e.kind) for e in entries if e.task_id is not None)
    reserved = {e.task_id: -e.amount_micro for e in entries if e.kind == "reserve"}
    closed = {e.task_id: e.amount_micro for e in entries if e.kind == "close"}
    for t in rows:
        assert kinds[(t.id, "reserve")] == 1 and kinds[(t.id, "close")] == 1, f"task {t.id}: {kinds}"
        assert reserved[t.id] == t.reserved_micro > 0
        expected = t.reserved_micro if t.status == "succeed" else 0  # requested-seconds billing
        assert t.charged_micro == expected, f"task {t.id} ({t.status}) charged {t.charged_micro}"
        assert closed[t.id] == t.reserved_micro - expected
    assert set(kinds) <= {(t.id, k) for t in rows for k in ("reserve", "close")}, "ledger rows of no task"
    for user_id, balance in balances.items():
        assert balance == sum(e.amount_micro for e in entries if e.user_id == user_id) >= 0
    return sum(t.charged_micro or 0 for t in rows)


async def test_sigkill_one_of_three_nodes_loses_and_doubles_nothing(cluster: Cluster) -> None:
    started = time.monotonic()
    engine = make_engine(cluster.database_url)
    victim = cluster.gateways[VICTIM]
    subs = [Submission(i) for i in range(TASKS)]
    killed: dict[str, Any] = {}

    try:
        async with httpx.AsyncClient(limits=httpx.Limits(max_connections=64)) as client:

            async def crash() -> None:
                """Slow upstream down for a moment so the victim dies in the worst places: creates made
                upstream whose answers are held (between upstream's create and our compare-and-set), and
                slow reads, so its poller holds leases on the tasks it claimed."""
                slow = {"hang_rate": 1.0, "hang_seconds": HANG_SECONDS, "latency_seconds": 0.3}
                await sim_config(client, cluster, **slow)
                assert victim.proc is not None
                await asyncio.sleep(0.3)
                for _ in range(100):  # until its poller holds a lease (at most 5 s)
                    if await active_leases_of(engine, victim.proc.pid):
                        break
                    await asyncio.sleep(0.05)
                killed["pid"] = victim.sigkill()
                await sim_config(client, cluster, hang_rate=0.0, latency_seconds=0.0)
                killed["leased"] = await active_leases_of(engine, killed["pid"])

            def crash_once(answered: int) -> None:
                if answered == KILL_AFTER:  # the other workers' requests are in flight right now
                    killed["crash"] = asyncio.create_task(crash())

            load = Load(cluster, client)
            await load.run(subs[:RESTART_AFTER], crash_once)
            await killed["crash"]
            assert victim.proc is not None and await victim.proc.wait() == -9
            await cluster.start_gateway(VICTIM, client)  # same port, same database: it rejoins
            rejoined_before = load.by_node[VICTIM]
            await load.run(subs[RESTART_AFTER:])
            submitted_s = time.monotonic() - started

            refused = [f"{s.ext_id}: {s.refused}" for s in subs if s.refused]
            assert not refused, f"{len(refused)} creates refused, e.g. {refused[:5]}\n{cluster.logs()}"
            counts = await wait_terminal(engine, cluster)
            settled_s = time.monotonic() - started

            async with engine.connect() as conn:
                rows = (await conn.execute(select(tasks))).all()
            by_ext = {r.external_task_id: r for r in rows}
            assert len(rows) == TASKS == len(by_ext), f"{len(rows)} task rows for {TASKS} creates: {counts}"
            for s in subs:
                row = by_ext[s.ext_id]
                assert row.id == s.task_id and row.status in ("succeed", "failed"), (s, row.status)

            views = await client_views(client, cluster, subs)
            assert set(views) <= {"succeed", "failed"}, views

            upstream = await upstream_tasks(client, cluster)
            stats = (await client.get(f"{cluster.sim_url}/__sim/stats")).json()["data"]
        ours = {r.id: r for r in rows}
        upstream_ids = [u["task_info"].get("external_task_id") for u in upstream]
        duplicates = len(upstream_ids) - len(set(upstream_ids))
        assert duplicates == 0 and stats["tasks_created"] == len(upstream) == TASKS, (duplicates, stats)
        assert set(upstream_ids) == set(ours), "upstream tasks and ours differ"
        assert stats["duplicates_refused"] > 0, "no retry met a task its dead node had created upstream"
        for u in upstream:
            row = ours[u["task_info"]["external_task_id"]]
            assert (row.upstream_task_id, row.status) == (u["task_id"], u["task_status"]), (row.id, u)

        charged = await check_ledger(engine, rows)
        interrupted = sum(1 for s in subs if s.lost_answers)
        assert interrupted > 0, "the kill interrupted no request: it proved nothing"
        assert killed["leased"], "the dead node held no lease: the takeover went untested"
        assert load.by_node[VICTIM] > rejoined_before, "the restarted node took no new task"
        print(
            f"\nmultinode: {TASKS} accepted, terminal {counts}, upstream {len(upstream)} "
            f"(duplicates {duplicates}, re-creates refused {stats['duplicates_refused']}); "
            f"{interrupted} creates lost their answer and were retried, {load.connect_refused} connects "
            f"refused; {len(killed['leased'])} tasks leased by the dead node; restarted node took "
            f"{load.by_node[VICTIM] - rejoined_before}; charged {charged / 1e6:g} credits; "
            f"submitted in {submitted_s:.1f} s, all terminal at {settled_s:.1f} s, "
            f"total {time.monotonic() - started:.1f} s"
        )
    finally:
        await engine.dispose()
