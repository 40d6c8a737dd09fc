"""Create, read and list text2video tasks.

Create follows one rule above all: **the task row exists before upstream is called**, and once upstream may
have been called the client never gets an answer that invites a blind retry (502/503/504/5001). Either we
confirm upstream's state and answer, or we accept the task under our public id and the refresher
reconciles it by asking upstream for our id (sent as Kling's ``external_task_id``).
"""

from __future__ import annotations

import copy
import hashlib
import logging
from typing import Any

import orjson

from ..domain.request import Text2VideoRequest, extract_model_name, validate_text2video
from ..domain.routing import Verdict, fails_over, verdict
from ..domain.schedule import first_poll_delay
from ..domain.task import TaskStatus, from_upstream
from ..errors import (
    BadRequest,
    ConcurrencyLimited,
    InvalidParameter,
    RateLimited,
    UpstreamFailure,
)
from ..netguard import UrlRefused
from ..storage.tasks import DuplicateExternalId, DuplicateTaskId, Refused, TaskRecord
from ..upstream.client import Outcome, UpstreamError, UpstreamTask
from . import money
from .auth import Principal
from .channels import Channel
from .errors_map import client_error
from .gateway import Gateway
from .inbound import callback_url as inbound_callback_url
from .transitions import move
from .wire import created_object

log = logging.getLogger("kling_gateway.tasks")

_MINT_TRIES = 5
# Kling's refusal of a duplicate external_task_id (undocumented; 1201 in every observed case and in the
# simulator) proves the opposite of "nothing was made", so a 1201 is checked by a lookup before it counts.
_MAYBE_DUPLICATE = frozenset({1201})


def parse_body(raw: bytes) -> Any:
    if not raw.strip():
        raise BadRequest("request body is empty; send a JSON object")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"request body is not valid JSON: {exc.msg} at position {exc.pos}") from exc


def validate(gw: Gateway, principal: Principal, body: Any) -> Text2VideoRequest:
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    public = extract_model_name(body)
    principal.check_model(public)
    resolved = gw.catalog.resolve(public)
    if resolved is None:
        raise InvalidParameter(
            f"model_name: unknown model {public!r} (available: {', '.join(gw.catalog.public_names())})"
        )
    upstream_model, caps = resolved
    req = validate_text2video(
        body,
        caps=caps,
        upstream_model=upstream_model,
        strict=gw.settings.strict_fields,
        max_external_id_len=gw.settings.max_external_task_id_len,
    )
    if req.callback_url is not None:
        try:  # syntax and literal addresses only: no DNS on the request path (delivery re-checks)
            gw.guard.check_syntax(req.callback_url, "callback_url")
        except UrlRefused as exc:
            raise InvalidParameter(exc.reason) from None
    return req


def _fingerprint(req: Text2VideoRequest) -> str:
    """Same external_task_id + same fingerprint = an idempotent retry of the same create."""
    doc = [req.model_name, req.callback_url, req.upstream_body]
    return hashlib.sha256(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)).hexdigest()


async def create(gw: Gateway, principal: Principal, raw: bytes) -> dict[str, Any]:
    req = validate(gw, principal, parse_body(raw))
    upstream = await _choose(gw, principal, req)
    if not isinstance(upstream, Channel):
        return created_object(upstream)  # idempotent retry of a task the client already has
    limits = gw.limits
    if limits is not None and limits.enabled:
        model = str(req.upstream_body.get("model_name", ""))  # the value stored as tasks.upstream_model
        async with limits.hold(upstream.account_id, model):
            try:
                await limits.admit(principal, upstream.account_id, model)
            except (RateLimited, ConcurrencyLimited):
                # an idempotent retry of a task the client already has must not be refused by its own limit
                existing = await _same_request(gw, principal, req)
                if existing is None:
                    raise
                return created_object(existing)
            record, fresh = await _insert(gw, principal, req, upstream)
    else:
        record, fresh = await _insert(gw, principal, req, upstream)
    if record.status != TaskStatus.QUEUED or record.upstream_task_id is not None:
        return created_object(record)  # idempotent retry of an existing task
    if not fresh:
        # a retry of a row still queued (its first request died, or is still waiting upstream): only the
        # account it was sent to can tell whether it holds the task, so only that one may be sent it again
        upstream = gw.upstream_for(record.upstream_account_id)
    body = _upstream_body(gw, record)
    return created_object(await _submit(gw, record, upstream, body, resent=not fresh))


async def _choose(gw: Gateway, principal: Principal, req: Text2VideoRequest) -> Channel | TaskRecord:
    """The account this create goes to; when none can take it now, the client's own earlier task for the
    same request if there is one, else 429/1303 (all busy) or 503/5001 (none usable)."""
    model = str(req.upstream_body.get("model_name", ""))
    channel = await gw.upstream.pick(model)
    if channel is not None:
        return channel
    existing = await _same_request(gw, principal, req)
    if existing is not None:
        return existing
    busy, why = gw.upstream.why_none(model)
    log.warning("no upstream account can take model %s: %s", model, why)
    if busy:
        raise ConcurrencyLimited(f"every upstream account for model {model!r} is at capacity; retry later")
    raise UpstreamFailure(
        f"no upstream account is available for model {model!r} right now; retry later", code=5001
    )


async def _same_request(gw: Gateway, principal: Principal, req: Text2VideoRequest) -> TaskRecord | None:
    if req.external_task_id is None:
        return None
    existing = await gw.tasks.by_external_id(principal.user_id, req.external_task_id)
    return existing if existing is not None and existing.request_hash == _fingerprint(req) else None


async def _insert(
    gw: Gateway, principal: Principal, req: Text2VideoRequest, upstream: Channel
) -> tuple[TaskRecord, bool]:
    """The new row and True, or the row an earlier request made with the same external_task_id and body
    and False."""
    fingerprint = _fingerprint(req)
    request_json = orjson.dumps(req.upstream_body).decode()
    # Priced before anything is stored: an unpriced model is refused here, before any upstream call.
    reserve = money.quote_for(gw, principal, req).reserve_micro if gw.money is not None else 0
    settings = gw.settings
    for _ in range(_MINT_TRIES):
        now = gw.now_ms()
        record = TaskRecord(
            id=gw.ids.mint(now),
            user_id=principal.user_id,
            key_id=principal.key.id,
            public_model=req.model_name,
            upstream_model=str(req.upstream_body.get("model_name", "")),
            status=TaskStatus.QUEUED.value,
            status_msg="",
            external_task_id=req.external_task_id,
            request_hash=fingerprint,
            request_json=request_json,
            callback_url=req.callback_url,
            mode=req.mode,
            duration=req.duration,
            sound=req.sound,
            watermark=req.watermark,
            upstream_account_id=upstream.account_id,
            upstream_task_id=None,
            result_json=None,
            unit_deduction=None,
            created_at=now,
            updated_at=now,
            # Only looked at if this request dies mid-call: then the refresher reconciles it.
            next_poll_at=now + int((settings.upstream_read_timeout + 5) * 1000),
            poll_attempts=0,
            reserved_micro=reserve,
        )
        try:
            if reserve > 0:
                before, after = money.reserve_steps(gw, record, reserve)
                await gw.tasks.insert(record, before=before, after=after)
            else:
                await gw.tasks.insert(record)
            return record, True
        except Refused as exc:
            raise money.refused(exc, record, reserve) from None
        except DuplicateTaskId:
            continue
        except DuplicateExternalId:
            existing = await gw.tasks.by_external_id(principal.user_id, req.external_task_id or "")
            if existing is not None and existing.request_hash == fingerprint:
                return existing, False
            raise InvalidParameter(
                f"external_task_id: {req.external_task_id!r} is already used by another task with a "
                "different body; use a new external_task_id"
            ) from None
    raise InvalidParameter("task id space busy; retry")  # pragma: no cover - 5 collisions in one ms


def _upstream_body(gw: Gateway, record: TaskRecord) -> dict[str, Any]:
    """What goes upstream: the stored body plus, when Kling can reach us, this task's own callback URL
    (never the client's: their callback_url is delivered by us, signed, with our ids)."""
    body: dict[str, Any] = orjson.loads(record.request_json)
    url = inbound_callback_url(gw, record.id)
    if url is not None:
        body["callback_url"] = url
    return body


async def _submit(
    gw: Gateway,
    record: TaskRecord,
    channel: Channel,
    body: dict[str, Any],
    *,
    accepted: bool = False,
    resent: bool = False,
) -> TaskRecord:
    """Call upstream for a queued row, failing over between accounts without ever submitting twice.

    * a refusal that proves no task exists moves on to the next account when it is the account's fault
      (busy, unreachable, credentials, balance: domain/routing.py), else it is the client's answer;
    * an ambiguous failure asks the *same* account for our id first; only a confirmed absence moves on
      (to another account, or once more to this one when it is the only one);
    * before each move the row is re-pointed at the next account (compare-and-set), so if this process
      dies mid-call the refresher asks the account that may hold the task.

    ``accepted``: the client already holds this task's id (refresher path), so a final refusal is not
    turned into a hidden row here; the ``UpstreamError`` goes back to the caller to retry or fail.

    ``resent``: the row may have been sent to this account before, by a request or process that died
    before recording the answer. Then no refusal is believed (nor acted on by moving elsewhere) until a
    lookup by our id finds nothing: the earlier send may have made the task. A client's retry of such a
    row (``resent`` without ``accepted``) never moves it, nor rejects it: its first request may still be
    on its way to this account, so a lookup's "absent" proves nothing yet. It is answered as accepted and
    left to the refresher, no earlier than the first request's own deadline."""
    model = record.upstream_model
    client_retry = resent and not accepted
    tried: set[int] = set()
    same_again = True  # one re-send to an account that confirmed it holds nothing, if no other can go
    while True:
        tried.add(channel.account_id)
        try:
            created = await channel.create(body, record.id)
        except UpstreamError as exc:
            # A 1201 may mean "external_task_id already exists": this row was sent here before (by a
            # request that died with its process, or one still waiting while the client retried).
            maybe_made = exc.outcome is Outcome.ABSENT and (resent or exc.code in _MAYBE_DUPLICATE)
            if maybe_made and (settled := await _look_up(gw, record, channel)) is not None:
                return settled
            resent = False  # confirmed: this account holds nothing under our id
            if exc.outcome is Outcome.ABSENT:
                if verdict(exc.code) is Verdict.KEY and channel.unavailable(gw.now_ms()) is None:
                    continue  # that key sits out now; the account's next key gets the create
                if client_retry:
                    return await _accept_unconfirmed(gw, record, keep_deadline=True)
                nxt = await gw.upstream.pick(model, tried) if fails_over(exc.code) else None
                if nxt is None:
                    if verdict(exc.code) is Verdict.UNREACHABLE and same_again:
                        same_again = False
                        continue  # nothing reached it: one more try on the same account is safe
                    if accepted:
                        raise
                    await _reject(gw, record, exc)
                    raise client_error(exc) from None
                refused: int | None = exc.code
            else:
                refused = None
                log.warning(
                    "ambiguous upstream create for task %s on %s: %s", record.id, channel.name, exc.code
                )
                if (settled := await _look_up(gw, record, channel)) is not None:
                    return settled
                nxt = None if client_retry else await gw.upstream.pick(model, tried)
                if nxt is None:
                    if not same_again:
                        return await _accept_unconfirmed(gw, record, keep_deadline=client_retry)
                    same_again = False
                    continue  # confirmed absent here: sending again to the same account is safe
            if not await gw.tasks.repoint(record.id, channel.account_id, nxt.account_id):
                return await gw.tasks.get(record.id) or record  # someone else is handling this row
            if refused is not None:  # logged once the row is re-pointed: a failover the log names happened
                log.warning(
                    "task %s: account %s refused (%s); trying %s", record.id, channel.name, refused, nxt.name
                )
            record.upstream_account_id = nxt.account_id
            channel = nxt
            continue
        return await _mark_submitted(gw, record, channel, created, reply_first=not accepted)


async def _look_up(gw: Gateway, record: TaskRecord, channel: Channel) -> TaskRecord | None:
    """Ask ``channel`` for the task under our id: found → submitted; no answer → accepted unconfirmed
    (the refresher asks again); ``None`` only when the account confirms it holds nothing."""
    try:
        found = await channel.find_by_external_id(record.id)
    except UpstreamError:
        return await _accept_unconfirmed(gw, record)
    if found is None:
        return None
    return await _mark_submitted(gw, record, channel, found)


async def _mark_submitted(
    gw: Gateway, record: TaskRecord, upstream: Channel, ut: UpstreamTask, *, reply_first: bool = False
) -> TaskRecord:
    """Record upstream's task on the row (CAS from queued). ``reply_first`` (a client's create upstream
    just accepted): the reply does not wait for that commit — the row and its reserve are durable, queued
    reads as submitted, and a write that never lands is found by the refresher at the request's deadline.
    Scheduled before the reply leaves, it is queued ahead of anything the reply can lead to."""
    now = gw.now_ms()
    status = from_upstream(ut.status) or TaskStatus.SUBMITTED
    if status not in (TaskStatus.SUBMITTED, TaskStatus.PROCESSING):
        status = TaskStatus.SUBMITTED  # a terminal state is applied by the refresher, with its result
    s = gw.settings
    first = first_poll_delay(
        record.duration,
        record.mode,
        scale=s.render_scale,
        floor=s.first_poll_seconds,
        rng=gw.rng,
        jitter=s.poll_jitter,
    )
    next_poll = now + int(first * 1000)
    changes = {
        "status": status.value,
        "upstream_task_id": ut.task_id,
        "upstream_account_id": upstream.account_id,
        "updated_at": now,
        "next_poll_at": next_poll,
        "lease_until": None,  # the refresher may be the caller (resubmit): let the task be claimed again
        "lease_owner": None,
    }
    if reply_first:
        gw.after_reply(
            _record_submitted(gw, copy.copy(record), changes), f"recording task {record.id} as submitted"
        )
    elif not await move(gw, record, TaskStatus.QUEUED, **changes):
        return await gw.tasks.get(record.id) or record
    record.status = status.value
    record.upstream_task_id = ut.task_id
    record.updated_at = now
    record.next_poll_at = next_poll
    return record


async def _record_submitted(gw: Gateway, record: TaskRecord, changes: dict[str, Any]) -> None:
    if not await move(gw, record, TaskStatus.QUEUED, **changes):
        log.info("task %s moved on before its upstream id was recorded; left to the refresher", record.id)


async def _accept_unconfirmed(gw: Gateway, record: TaskRecord, *, keep_deadline: bool = False) -> TaskRecord:
    """Upstream's state is unknown: answer 200 with our id, let the refresher settle it soon (with
    ``keep_deadline``, not before the row's scheduled look, which an earlier request may still beat)."""
    soon = gw.now_ms() + 1000
    if keep_deadline and record.next_poll_at is not None:
        soon = max(soon, record.next_poll_at)
    await gw.tasks.transition(
        record.id, TaskStatus.QUEUED, next_poll_at=soon, lease_until=None, lease_owner=None
    )
    record.next_poll_at = soon
    return record


async def _reject(gw: Gateway, record: TaskRecord, exc: UpstreamError) -> None:
    """Upstream proved no task exists. The row stays for the operator; the client's external_task_id is
    released (a retry with it must work) and the row is hidden from the client."""
    await move(  # through move: the reserve is refunded in the same transaction
        gw,
        record,
        TaskStatus.QUEUED,
        status=TaskStatus.REJECTED.value,
        status_msg=f"upstream {exc.code}: {exc.message}",
        external_task_id=None,
        next_poll_at=None,
        updated_at=gw.now_ms(),
    )


async def resubmit(gw: Gateway, record: TaskRecord) -> TaskRecord:
    """The refresher's path for an accepted, queued row that upstream confirmed absent (or never saw).
    Raises ``UpstreamError`` when upstream refuses; the refresher decides between retrying and failing."""
    channel = gw.upstream_for(record.upstream_account_id)
    now = gw.now_ms()
    if channel.unavailable(now) is not None or channel.benched(now, record.upstream_model) is not None:
        # confirmed absent on its account, which cannot take it now: another account may
        other = await gw.upstream.pick(record.upstream_model, {channel.account_id})
        if other is not None and await gw.tasks.repoint(
            record.id, record.upstream_account_id, other.account_id
        ):
            record.upstream_account_id = other.account_id
            channel = other
    return await _submit(gw, record, channel, _upstream_body(gw, record), accepted=True, resent=True)
