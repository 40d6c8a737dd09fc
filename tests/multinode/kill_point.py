"""Where the SIGKILL test kills its victim: at a point that proves something, never blind.

The victim must die holding a poller lease (so another node has to take the task over) and with a
create made upstream whose answer it has not recorded yet (so the client's retry on another node
meets upstream's task and must not make a second one). Both are confirmed with the victim stopped
(SIGSTOP), so nothing it does can change them between the look and the kill.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from kling_gateway.storage.tables import tasks
from tests.multinode.cluster import Cluster, read, sim_token

ACTIVE = ("queued", "submitted", "processing")
KILL_WAIT_SECONDS = 30.0  # both states come within a second of the slowdown; this is a failure


async def active_leases_of(engine: AsyncEngine, pid: int) -> list[str]:
    """Tasks a process holds: its poller's worker id is ``host:pid:random``."""
    stmt = select(tasks.c.id).where(
        tasks.c.lease_owner.like(f"%:{pid}:%"), tasks.c.status.in_(ACTIVE)
    )
    async with engine.connect() as conn:
        return list((await conn.execute(stmt)).scalars())


async def queued_ids(engine: AsyncEngine, external_ids: list[str]) -> dict[str, str]:
    """Client id -> our id, for those of these creates whose row is written but not yet answered."""
    if not external_ids:
        return {}
    stmt = select(tasks.c.external_task_id, tasks.c.id).where(
        tasks.c.external_task_id.in_(external_ids), tasks.c.status == "queued"
    )
    async with engine.connect() as conn:
        return {str(ext): str(id_) for ext, id_ in (await conn.execute(stmt)).all()}


async def held_upstream(client: httpx.AsyncClient, cluster: Cluster, task_id: str) -> bool:
    """Whether any simulator holds a task under our id (its ``external_task_id``)."""
    headers = {"Authorization": f"Bearer {sim_token()}"}
    for i in range(len(cluster.sims)):
        url = f"{cluster.sim_url_of(i)}/v1/videos/text2video/{task_id}"
        if (await read(client, url, headers=headers, timeout=10.0)).json()["code"] == 0:
            return True
    return False


async def unanswered_creates(
    engine: AsyncEngine, client: httpx.AsyncClient, cluster: Cluster, sent: list[str]
) -> set[str]:
    """Of these client ids, those whose row is still queued while upstream already holds the task.
    Upstream never forgets a task, so only the "still queued" half can go stale."""
    queued = await queued_ids(engine, sent)
    async with asyncio.TaskGroup() as group:
        found = {
            ext: group.create_task(held_upstream(client, cluster, i)) for ext, i in queued.items()
        }
    return {ext for ext, held in found.items() if held.result()}


async def kill_at_a_proving_point(
    engine: AsyncEngine,
    client: httpx.AsyncClient,
    cluster: Cluster,
    node: int,
    in_flight: Mapping[str, int],
) -> tuple[int, list[str]]:
    """SIGKILL gateway ``node`` once it holds a lease and a create of a request still in flight
    to it (``in_flight``: client id -> node, live) is made upstream but unanswered. Returns the
    dead pid and the tasks it held leases on at the kill."""
    victim = cluster.gateways[node]
    assert victim.proc is not None
    pid = victim.proc.pid
    deadline = time.monotonic() + KILL_WAIT_SECONDS
    while time.monotonic() < deadline:
        sent = [ext for ext, n in in_flight.items() if n == node]
        unanswered = await unanswered_creates(engine, client, cluster, sent)
        if unanswered and await active_leases_of(engine, pid):
            victim.freeze()
            try:
                leased = await active_leases_of(engine, pid)
                still = set(await queued_ids(engine, sorted(unanswered)))
            except BaseException:
                victim.thaw()
                raise
            # No await from here to the kill: the client's view of what is in flight stays put.
            if leased and any(in_flight.get(ext) == node for ext in still):
                return victim.sigkill(), leased
            victim.thaw()
        await asyncio.sleep(0.05)
    raise AssertionError(
        f"gateway-{node} (pid {pid}) never held a lease and an unanswered upstream create at once "
        f"within {KILL_WAIT_SECONDS:.0f} s\n{cluster.logs()}"
    )
