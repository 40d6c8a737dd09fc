"""Three gateway processes on one PostgreSQL database, one of them SIGKILLed in mid-load.

What a crash may leave behind: a task row inserted but never sent upstream, a task created upstream
whose answer never reached the row, a poller lease that nobody will release, a client whose request
vanished. The test proves each is recovered, and nothing is done twice:

- every create the clients made was accepted (a lost answer is retried on another node with the same
  ``external_task_id``, which must return the same task, never a second one or an error);
- every accepted task reaches ``succeed`` or ``failed`` on its own, the killed node's leased tasks
  included, and reads the same on every node;
- upstream holds exactly one task per accepted task (its ``external_task_id`` is our public id,
  1:1);
- the ledger balances: one reserve and one close per task, charged = reserve on success and 0 on
  failure, and the user's balance equals the sum of their ledger entries;
- the killed node, restarted on its port, serves again and takes its share of new tasks;
- and before all that, three nodes started at once on an empty database all come up (one migrates
  and bootstraps, the others wait for it).

The same scenario runs a second time with two upstream Kling accounts (two simulator processes, the
second added with ``kling-gateway channels add`` while the nodes run), the second refusing a share
of creates with 1303 so creates fail over between accounts while the node dies. On top of the above
it proves that failover never places one task on two accounts and that each row names the account
that holds its task: the refresher of a half-finished create asks that account, so a wrong one would
lose the task.

Runs in the normal suite (marker ``multinode``, deselect with ``-m "not multinode"``) and skips
loudly without PostgreSQL: SQLite cannot be shared by several hosts, so a cluster means PostgreSQL.
"""

from __future__ import annotations

import asyncio
import re
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
from kling_gateway.storage.tables import ledger_entries, tasks, upstream_accounts, users
from tests.conftest import TEXT2VIDEO
from tests.multinode.cluster import SIM_ACCESS_KEY, SIM_SECRET_KEY, Cluster, read, sim_token
from tests.multinode.cluster import client as cluster_client
from tests.multinode.kill_point import ACTIVE, kill_at_a_proving_point
from tests.postgres import fresh_run_database

pytestmark = pytest.mark.multinode

TASKS = 500
KILL_AFTER = 150  # answered creates before the victim dies
RESTART_AFTER = 350  # creates sent while it is down; the rest go to all three nodes again
CONCURRENCY = 20
VICTIM = 1
SETTLE_SECONDS = 60.0
HANG_SECONDS = 1.0  # upstream answers held around the kill; below the gateways' 3 s read timeout
CREDITS = "100000"

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
# Poll soon and often (render scale 0: first look at first_poll_seconds), and let a dead node's
# leases and half-finished creates come back within seconds rather than the production defaults'
# 30 s.
GATEWAY_ENV = {
    "KGW_POLL_RENDER_SCALE": "0",
    "KGW_FIRST_POLL_SECONDS": "0.3",
    "KGW_MAX_POLL_SECONDS": "1",
    "KGW_REFRESH_INTERVAL_SECONDS": "0.2",
    "KGW_POLL_JITTER": "0",
    "KGW_LEASE_SECONDS": "4",
    "KGW_REFRESH_BATCH": "10",  # small claims, so every node's poller holds some of the work
    "KGW_UPSTREAM_READ_TIMEOUT": "3",
    # An account added with the CLI reaches every running node within half a second.
    "KGW_CHANNEL_RELOAD_SECONDS": "0.5",
}
# Two accounts: the second one (added with the CLI, same priority and weight as the KGW_KLING_* one)
# refuses this share of creates with 1303, which proves nothing was made there, so the create moves
# to the first. A busy mark shorter than the default 2 s keeps the draw between both accounts going
# while the refusals keep coming, instead of a few refusals parking every node on the first account.
SECOND = "b"
REFUSE_RATE = 0.25
TWO_ACCOUNT_ENV = {"KGW_CHANNEL_BUSY_SECONDS": "0.05"}
_FAILOVER = re.compile(rf'"msg":"task (\d+): account {SECOND} refused \(1303\); trying default"')


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
    same body goes to the next node: an idempotent retry, as a client behind a load balancer
    would."""

    cluster: Cluster
    client: httpx.AsyncClient
    answered: int = 0
    connect_refused: int = 0
    by_node: Counter[int] = field(default_factory=Counter)
    in_flight: dict[str, int] = field(default_factory=dict)  # client id -> node it was sent to

    async def run(
        self, subs: Sequence[Submission], on_answer: Callable[[int], None] | None = None
    ) -> None:
        pending = iter(subs)

        async def worker() -> None:
            for sub in pending:
                await self.submit(sub)
                self.answered += 1
                if on_answer is not None:
                    on_answer(self.answered)

        async with asyncio.TaskGroup() as group:  # one failing worker stops the others
            for _ in range(CONCURRENCY):
                group.create_task(worker())

    async def submit(self, sub: Submission) -> None:
        nodes = len(self.cluster.ports)
        headers = {"Authorization": f"Bearer {self.cluster.api_key}"}
        for attempt in range(2 * nodes):
            node = (sub.index + attempt) % nodes
            url = self.cluster.gateway_url(node) + TEXT2VIDEO
            self.in_flight[sub.ext_id] = node
            try:
                resp = await self.client.post(url, json=sub.body(), headers=headers, timeout=20.0)
            except httpx.ConnectError:
                self.connect_refused += 1  # nothing was sent
                continue
            except httpx.TransportError:
                sub.lost_answers += 1  # sent; the node may have created the task before it died
                continue
            finally:
                del self.in_flight[sub.ext_id]
            payload = resp.json()
            if resp.status_code == 200 and payload.get("code") == 0:
                sub.task_id, sub.node = payload["data"]["task_id"], node
                self.by_node[node] += 1
            else:
                sub.refused = f"node {node}: HTTP {resp.status_code} {resp.text[:300]}"
            return
        sub.refused = "no node answered"


@pytest.fixture
async def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Cluster]:
    """Three nodes and one simulator per upstream account (``indirect`` parameter, default 1)."""
    url = await fresh_run_database()
    accounts = int(getattr(request, "param", 1))
    env = GATEWAY_ENV if accounts == 1 else {**GATEWAY_ENV, **TWO_ACCOUNT_ENV}
    c = Cluster(tmp_path, url, simulators=accounts, sim_args=SIM_ARGS, gateway_env=env)
    try:
        async with cluster_client() as client:
            async with asyncio.TaskGroup() as group:
                for sim in c.sims:
                    group.create_task(sim.start())
            # A cold start: all nodes at once on the empty database (migration lock, one bootstrap).
            async with asyncio.TaskGroup() as group:
                for i in range(len(c.ports)):
                    group.create_task(c.start_gateway(i, client))
            for sim in c.sims:
                await sim.wait_ready(client)
            if accounts == 2:
                await add_second_account(client, c)
        await c.create_funded_key("load", CREDITS)
        yield c
    finally:
        await c.close()


async def add_second_account(client: httpx.AsyncClient, cluster: Cluster) -> None:
    """The operator's runbook while the nodes run: ``channels add`` at the default account's
    priority and weight; then wait until every node's periodic reload shows it usable (its /metrics
    reads the process's live account set without reloading it, unlike the admin API)."""
    await cluster.cli(
        "channels",
        "add",
        SECOND,
        cluster.sim_url_of(1),
        "--access-key",
        SIM_ACCESS_KEY,
        "--secret-key",
        SIM_SECRET_KEY,
        "--priority",
        "0",
        "--weight",
        "1",
    )
    await sim_config(client, cluster, 1, create_error_rate=REFUSE_RATE, create_error_code=1303)
    wanted = f'kgw_upstream_account_usable{{account="{SECOND}"}} 1.0'
    deadline = time.monotonic() + 10.0
    for node in range(len(cluster.ports)):
        while wanted not in (await read(client, f"{cluster.gateway_url(node)}/metrics")).text:
            assert time.monotonic() < deadline, f"node {node} never loaded account {SECOND}"
            await asyncio.sleep(0.1)


async def sim_config(client: httpx.AsyncClient, cluster: Cluster, sim: int, **patch: float) -> None:
    resp = await client.post(f"{cluster.sim_url_of(sim)}/__sim/config", json=patch)
    assert resp.json()["code"] == 0, resp.text


async def all_sims_config(client: httpx.AsyncClient, cluster: Cluster, **patch: float) -> None:
    async with asyncio.TaskGroup() as group:
        for i in range(len(cluster.sims)):
            group.create_task(sim_config(client, cluster, i, **patch))


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


async def upstream_tasks(
    client: httpx.AsyncClient, cluster: Cluster, sim: int
) -> list[dict[str, Any]]:
    """Every task one simulator holds for the gateway's account, through Kling's own list route."""
    found: list[dict[str, Any]] = []
    headers = {"Authorization": f"Bearer {sim_token()}"}
    for page in range(1, 100):
        resp = await read(
            client,
            f"{cluster.sim_url_of(sim)}/v1/videos/text2video",
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
    """Read every task by the client's own id, round-robin over the nodes: the status each shows."""
    sem = asyncio.Semaphore(CONCURRENCY)
    headers = {"Authorization": f"Bearer {cluster.api_key}"}

    async def read_one(sub: Submission) -> str:
        async with sem:
            url = f"{cluster.gateway_url(sub.index % len(cluster.ports))}{TEXT2VIDEO}/{sub.ext_id}"
            data = (await read(client, url, headers=headers, timeout=20.0)).json()["data"]
        assert data["task_id"] == sub.task_id, (
            f"{sub.ext_id} reads as {data['task_id']}, not {sub.task_id}"
        )
        return str(data["task_status"])

    # A task group, not gather: on a failure the other reads stop before the client closes under
    # them (gather left them running, and their sockets leaked into the next test as
    # ResourceWarnings).
    async with asyncio.TaskGroup() as group:
        reads = [group.create_task(read_one(s)) for s in subs]
    return Counter(r.result() for r in reads)


async def check_ledger(engine: AsyncEngine, rows: Sequence[Any]) -> int:
    """One reserve, one close per task, the right charge, balance = Σ ledger; returns Σ charged."""
    async with engine.connect() as conn:
        entries = (await conn.execute(select(ledger_entries))).all()
        balances = dict((await conn.execute(select(users.c.id, users.c.balance_micro))).all())
    kinds = Counter((e.task_id, e.kind) for e in entries if e.task_id is not None)
    reserved = {e.task_id: -e.amount_micro for e in entries if e.kind == "reserve"}
    closed = {e.task_id: e.amount_micro for e in entries if e.kind == "close"}
    for t in rows:
        assert kinds[(t.id, "reserve")] == 1 and kinds[(t.id, "close")] == 1, (
            f"task {t.id}: {kinds}"
        )
        assert reserved[t.id] == t.reserved_micro > 0
        expected = t.reserved_micro if t.status == "succeed" else 0  # requested-seconds billing
        assert t.charged_micro == expected, f"task {t.id} ({t.status}) charged {t.charged_micro}"
        assert closed[t.id] == t.reserved_micro - expected
    assert set(kinds) <= {(t.id, k) for t in rows for k in ("reserve", "close")}, (
        "ledger rows of no task"
    )
    for user_id, balance in balances.items():
        assert balance == sum(e.amount_micro for e in entries if e.user_id == user_id) >= 0
    return sum(t.charged_micro or 0 for t in rows)


@dataclass
class Run:
    """What one SIGKILL scenario left, for the assertions both tests share and the extra ones."""

    subs: list[Submission]
    rows: list[Any]
    account_ids: dict[str, int]  # account name -> id
    held: list[list[dict[str, Any]]]  # per simulator: every task it holds
    stats: list[dict[str, Any]]  # per simulator: /__sim/stats at the end
    summary: str


async def run_sigkill(cluster: Cluster) -> Run:
    """Load three nodes, SIGKILL one mid-load, restart it, let everything settle; then check what
    must hold whatever the number of accounts."""
    started = time.monotonic()
    engine = make_engine(cluster.database_url)
    victim = cluster.gateways[VICTIM]
    subs = [Submission(i) for i in range(TASKS)]
    killed: dict[str, Any] = {}

    try:
        async with cluster_client(max_connections=64) as client:

            async def crash() -> None:
                """Slow every upstream account down for a moment so the victim dies in the worst
                places: creates made upstream whose answers are held (between upstream's create and
                our compare-and-set), and slow reads, so its poller holds leases on the tasks it
                claimed. The kill waits until it is in both places at once."""
                slow = {"hang_rate": 1.0, "hang_seconds": HANG_SECONDS, "latency_seconds": 0.3}
                await all_sims_config(client, cluster, **slow)
                killed["pid"], killed["leased"] = await kill_at_a_proving_point(
                    engine, client, cluster, VICTIM, load.in_flight
                )
                await all_sims_config(client, cluster, hang_rate=0.0, latency_seconds=0.0)

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
            assert not refused, (
                f"{len(refused)} creates refused, e.g. {refused[:5]}\n{cluster.logs()}"
            )
            counts = await wait_terminal(engine, cluster)
            settled_s = time.monotonic() - started

            async with engine.connect() as conn:
                rows = list((await conn.execute(select(tasks))).all())
                account_ids = {
                    name: int(id_)
                    for id_, name in (
                        await conn.execute(select(upstream_accounts.c.id, upstream_accounts.c.name))
                    ).all()
                }
            by_ext = {r.external_task_id: r for r in rows}
            assert len(rows) == TASKS == len(by_ext), (
                f"{len(rows)} task rows for {TASKS} creates: {counts}"
            )
            for s in subs:
                row = by_ext[s.ext_id]
                assert row.id == s.task_id and row.status in ("succeed", "failed"), (s, row.status)

            views = await client_views(client, cluster, subs)
            assert set(views) <= {"succeed", "failed"}, views

            sims = range(len(cluster.sims))
            held = [await upstream_tasks(client, cluster, i) for i in sims]
            stats = [
                (await read(client, f"{cluster.sim_url_of(i)}/__sim/stats")).json()["data"]
                for i in sims
            ]
        ours = {r.id: r for r in rows}
        # The simulator for account i is the one the operator configured for it: "default" from the
        # KGW_KLING_* settings, the others added with the CLI under the names the test gave them.
        sim_account = [account_ids["default"], *(account_ids[SECOND] for _ in sims[1:])]
        holder: dict[str, int] = {}  # our id -> the simulator holding its task
        duplicates = 0
        for i, found in enumerate(held):
            ids = [u["task_info"].get("external_task_id") for u in found]
            duplicates += len(ids) - len(set(ids))
            assert stats[i]["tasks_created"] == len(found), (i, stats[i])
            for ext in ids:
                duplicates += ext in holder  # one task on two accounts: a create sent twice
                holder[ext] = i
        assert duplicates == 0 and len(holder) == sum(len(f) for f in held) == TASKS, (
            duplicates,
            stats,
        )
        assert set(holder) == set(ours), "upstream tasks and ours differ"
        for i, found in enumerate(held):
            for u in found:
                row = ours[u["task_info"]["external_task_id"]]
                assert (row.upstream_account_id, row.upstream_task_id, row.status) == (
                    sim_account[i],
                    u["task_id"],
                    u["task_status"],
                ), (row.id, row.upstream_account_id, sim_account[i], u)
        placed = Counter(r.upstream_account_id for r in rows)
        assert [placed[a] for a in sim_account] == [len(f) for f in held], (placed, sim_account)
        re_created = sum(s["duplicates_refused"] for s in stats)
        assert re_created > 0, "no retry met a task its dead node had created upstream"

        charged = await check_ledger(engine, rows)
        interrupted = sum(1 for s in subs if s.lost_answers)
        assert interrupted > 0, "the kill interrupted no request: it proved nothing"
        assert load.by_node[VICTIM] > rejoined_before, "the restarted node took no new task"
        summary = (
            f"{TASKS} accepted, terminal {counts}, upstream {[len(f) for f in held]} per account "
            f"(duplicates {duplicates}, re-creates refused {re_created}); "
            f"{interrupted} creates lost their answer and were retried, "
            f"{load.connect_refused} connects refused; "
            f"{len(killed['leased'])} tasks leased by the dead node; restarted node took "
            f"{load.by_node[VICTIM] - rejoined_before}; charged {charged / 1e6:g} credits; "
            f"submitted in {submitted_s:.1f} s, all terminal at {settled_s:.1f} s, "
            f"total {time.monotonic() - started:.1f} s"
        )
        return Run(subs, rows, account_ids, held, stats, summary)
    finally:
        await engine.dispose()


async def test_sigkill_one_of_three_nodes_loses_and_doubles_nothing(cluster: Cluster) -> None:
    run = await run_sigkill(cluster)
    print(f"\nmultinode: {run.summary}")


@pytest.mark.parametrize("cluster", [2], indirect=True, ids=["two-accounts"])
async def test_sigkill_with_two_accounts_failing_over_places_each_task_once(
    cluster: Cluster,
) -> None:
    run = await run_sigkill(cluster)
    default, second = run.account_ids["default"], run.account_ids[SECOND]
    on_default, on_second = (len(f) for f in run.held)
    assert on_default > 0 and on_second > 0, "creates did not split between the accounts"

    # Every node routed to both accounts: the account added while they ran reached each of them.
    by_id = {r.id: r for r in run.rows}
    for node in range(len(cluster.ports)):
        placed = {by_id[s.task_id].upstream_account_id for s in run.subs if s.node == node}
        assert placed == {default, second}, f"node {node} placed its creates on {placed} only"

    # The 1303 refusals really moved creates: each failover a node logged names a task that the
    # first account holds (the second refused it, so it can hold nothing under that id). A node
    # killed while a refusal was on its way logged nothing for it, hence at most, not exactly, the
    # refusals counted.
    refusals = run.stats[1]["create_errors_injected"]
    failed_over = {
        m.group(1) for g in cluster.gateways for m in _FAILOVER.finditer(g.log_path.read_text())
    }
    assert failed_over, f"no create failed over ({refusals} refusals by {SECOND})\n{cluster.logs()}"
    assert 0 < len(failed_over) <= refusals, (len(failed_over), refusals)
    assert all(by_id[t].upstream_account_id == default for t in failed_over), (
        "a failed-over task moved back"
    )
    print(
        f"\nmultinode, two accounts: {run.summary}; {SECOND} refused {refusals} creates with 1303, "
        f"{len(failed_over)} logged failovers to default; "
        f"tasks default {on_default}, {SECOND} {on_second}"
    )
