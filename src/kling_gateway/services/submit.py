"""Send a queued row upstream: perform what domain/failover.py decides, one action at a time.

The decisions (when to look up, move on, send once more, accept unconfirmed or reject) are all in
``next_action``; this module only does the I/O and reports what it saw.
"""

from __future__ import annotations

import copy
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from ..domain import failover as fo
from ..domain.refusals import Fault
from ..domain.schedule import first_poll_delay
from ..domain.task import TaskStatus, from_upstream
from ..settings import Settings
from ..storage.ports import Tasks
from ..storage.tasks import TaskRecord
from ..upstream.client import UpstreamError, UpstreamTask
from .background import Background
from .callback_urls import CallbackUrls
from .channels import Channel, ChannelSet
from .transitions import Mover

log = logging.getLogger("kling_gateway.tasks")


@dataclass(frozen=True, slots=True)
class Submitter:
    tasks: Tasks
    channels: ChannelSet
    mover: Mover
    callbacks: CallbackUrls
    settings: Settings
    rng: random.Random
    clock: Callable[[], float]
    background: Background

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def upstream_body(self, record: TaskRecord) -> dict[str, Any]:
        """What goes upstream: the stored body plus, when Kling can reach us, this task's own
        callback URL (never the client's: their callback_url is delivered by us, signed, with our
        ids)."""
        body: dict[str, Any] = orjson.loads(record.request_json)
        url = self.callbacks.for_task(record.id)
        if url is not None:
            body["callback_url"] = url
        return body

    async def submit(
        self,
        record: TaskRecord,
        channel: Channel,
        body: dict[str, Any],
        *,
        accepted: bool = False,
        resent: bool = False,
    ) -> TaskRecord:
        """Call upstream for a queued row without ever submitting it twice (domain/failover.py).
        Raises the client's ``KlingError`` on a rejection, the ``UpstreamError`` when handed
        back."""
        run = _Run(self, record, channel, body)
        action: fo.Action
        action, state = fo.start(channel.account_id, accepted=accepted, resent=resent)
        while not isinstance(action, fo.Final):
            action, state = fo.next_action(state, await run.step(action))
        return await run.finish(action)

    async def mark_submitted(
        self,
        record: TaskRecord,
        upstream: Channel,
        ut: UpstreamTask,
        *,
        reply_first: bool = False,
    ) -> TaskRecord:
        """Record upstream's task on the row (CAS from queued). ``reply_first`` (a client's create
        upstream just accepted): the reply does not wait for that commit — the row and its reserve
        are durable, queued reads as submitted, and a write that never lands is found by the
        refresher at the request's deadline. Scheduled before the reply leaves, it is queued ahead
        of anything the reply can lead to."""
        now = self.now_ms()
        status = from_upstream(ut.status) or TaskStatus.SUBMITTED
        if status not in (TaskStatus.SUBMITTED, TaskStatus.PROCESSING):
            status = TaskStatus.SUBMITTED  # a terminal state is the refresher's, with its result
        s = self.settings
        first = first_poll_delay(
            record.duration,
            record.mode,
            scale=s.render_scale,
            floor=s.first_poll_seconds,
            rng=self.rng,
            jitter=s.poll_jitter,
        )
        next_poll = now + int(first * 1000)
        changes: dict[str, Any] = {
            "status": status.value,
            "upstream_task_id": ut.task_id,
            "upstream_account_id": upstream.account_id,
            "updated_at": now,
            "next_poll_at": next_poll,
            "lease_until": None,  # the caller may be the refresher (resubmit): let it be claimed
            "lease_owner": None,
        }
        if reply_first:
            write = self._record_submitted(copy.copy(record), changes)
            self.background.after_reply(write, f"recording task {record.id} as submitted")
        elif not await self.mover.move(record, TaskStatus.QUEUED, **changes):
            return await self.tasks.get(record.id) or record
        record.status = status.value
        record.upstream_task_id = ut.task_id
        record.updated_at = now
        record.next_poll_at = next_poll
        return record

    async def _record_submitted(self, record: TaskRecord, changes: dict[str, Any]) -> None:
        if not await self.mover.move(record, TaskStatus.QUEUED, **changes):
            log.info(
                "task %s moved on before its upstream id was recorded; left to the refresher",
                record.id,
            )

    async def accept_unconfirmed(
        self, record: TaskRecord, *, keep_deadline: bool = False
    ) -> TaskRecord:
        """Upstream's state is unknown: answer 200 with our id, let the refresher settle it soon
        (with ``keep_deadline``, not before the row's scheduled look, which an earlier request may
        beat)."""
        soon = self.now_ms() + 1000
        if keep_deadline and record.next_poll_at is not None:
            soon = max(soon, record.next_poll_at)
        await self.tasks.transition(
            record.id, TaskStatus.QUEUED, next_poll_at=soon, lease_until=None, lease_owner=None
        )
        record.next_poll_at = soon
        return record

    async def reject(self, record: TaskRecord, exc: UpstreamError) -> None:
        """Upstream proved no task exists. The row stays for the operator; the client's
        external_task_id is released (a retry with it must work) and the row is hidden from
        them."""
        await self.mover.move(  # through move: the reserve is refunded in the same transaction
            record,
            TaskStatus.QUEUED,
            status=TaskStatus.REJECTED.value,
            status_msg=f"upstream {exc.code}: {exc.message}",
            external_task_id=None,
            next_poll_at=None,
            updated_at=self.now_ms(),
        )

    async def resubmit(self, record: TaskRecord) -> TaskRecord:
        """The refresher's path for an accepted, queued row that upstream confirmed absent (or
        never saw). Raises ``UpstreamError`` when upstream refuses; the refresher retries or
        fails it."""
        channel = self.channels.for_task(record.upstream_account_id)
        now = self.now_ms()
        model = record.upstream_model
        if channel.unavailable(now) is not None or channel.benched(now, model) is not None:
            # confirmed absent on its account, which cannot take it now: another account may
            other = await self.channels.pick(model, {channel.account_id})
            if other is not None and await self.tasks.repoint(
                record.id, record.upstream_account_id, other.account_id
            ):
                record.upstream_account_id = other.account_id
                channel = other
        body = self.upstream_body(record)
        return await self.submit(record, channel, body, accepted=True, resent=True)


class _Run:
    """One submit's I/O: the channel it is on, the last upstream answer and the last refusal."""

    def __init__(
        self, sub: Submitter, record: TaskRecord, channel: Channel, body: dict[str, Any]
    ) -> None:
        self.sub, self.record, self.channel, self.body = sub, record, channel, body
        self.task: UpstreamTask | None = None
        self.error: UpstreamError | None = None

    async def step(self, action: fo.Step) -> fo.Outcome:
        match action:
            case fo.Send():
                return await self._send()
            case fo.LookUp():
                return await self._look_up()
            case fo.MoveOn(exclude=exclude, refused=refused):
                return await self._move_on(exclude, refused)

    async def _send(self) -> fo.Outcome:
        try:
            self.task = await self.channel.create(self.body, self.record.id)
        except UpstreamError as exc:  # the channel has benched what failed (ChannelSet.on_error)
            self.error = exc
            if not exc.refusal.absent:
                log.warning(
                    "ambiguous upstream create for task %s on %s: %s",
                    self.record.id,
                    self.channel.name,
                    exc.code,
                )
            usable = exc.refusal.fault is Fault.KEY and self._usable()
            return fo.Refused(exc.refusal, usable)
        return fo.Created()

    def _usable(self) -> bool:
        return self.channel.unavailable(self.sub.now_ms()) is None

    async def _look_up(self) -> fo.Outcome:
        try:
            found = await self.channel.find_by_external_id(self.record.id)
        except UpstreamError:
            return fo.LookUpFailed()
        if found is None:
            return fo.NotFound()
        self.task = found
        return fo.Found()

    async def _move_on(self, exclude: frozenset[int], refused: int | None) -> fo.Outcome:
        sub, record, channel = self.sub, self.record, self.channel
        nxt = await sub.channels.pick(record.upstream_model, set(exclude))
        if nxt is None:
            return fo.NoneLeft()
        if not await sub.tasks.repoint(record.id, channel.account_id, nxt.account_id):
            return fo.Lost()
        if refused is not None:  # logged once the row is re-pointed: a failover it names happened
            log.warning(
                "task %s: account %s refused (%s); trying %s",
                record.id,
                channel.name,
                refused,
                nxt.name,
            )
        record.upstream_account_id = nxt.account_id
        self.channel = nxt
        return fo.Moved(nxt.account_id)

    async def finish(self, action: fo.Final) -> TaskRecord:
        sub, record = self.sub, self.record
        match action:
            case fo.Record(reply_first=first):
                assert self.task is not None
                return await sub.mark_submitted(record, self.channel, self.task, reply_first=first)
            case fo.AcceptUnconfirmed(keep_deadline=keep):
                return await sub.accept_unconfirmed(record, keep_deadline=keep)
            case fo.Superseded():
                return await sub.tasks.get(record.id) or record
            case fo.HandBack():
                assert self.error is not None
                raise self.error
            case fo.Reject(refusal=refusal):
                assert self.error is not None
                await sub.reject(record, self.error)
                raise refusal.client_error(self.error.message) from None
