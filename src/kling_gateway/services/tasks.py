"""Create, read and list text2video tasks.

Create follows one rule above all: **the task row exists before upstream is called**, and once upstream may
have been called the client never gets an answer that invites a blind retry (502/503/504/5001). Either we
confirm upstream's state and answer, or we accept the task under our public id and the refresher
reconciles it by asking upstream for our id (sent as Kling's ``external_task_id``).
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any, NoReturn

import orjson

from ..domain.request import Text2VideoRequest, extract_model_name, validate_text2video
from ..domain.schedule import first_poll_delay
from ..domain.task import TaskStatus, from_upstream
from ..errors import BadRequest, ConcurrencyLimited, InvalidParameter, NotFound, RateLimited
from ..mirror.service import public_videos
from ..netguard import UrlRefused
from ..storage.tasks import DuplicateExternalId, DuplicateTaskId, Refused, TaskRecord
from ..upstream.client import Outcome, UpstreamError, UpstreamTask
from . import money
from .auth import Principal
from .errors_map import client_error
from .gateway import Gateway, Upstream
from .inbound import callback_url as inbound_callback_url
from .transitions import move
from .wire import created_object, task_object

log = logging.getLogger("kling_gateway.tasks")

PAGE_NUM_MAX = 1000
PAGE_SIZE_MAX = 500
_MINT_TRIES = 5
# Kling's refusal of a duplicate external_task_id (undocumented: "probably 1201" per kling-api.md; 1201
# in the simulator). It proves the opposite of "nothing was made": the row was sent before — by a
# request that died with its process, or by one still waiting on a slow upstream while the client
# retried — so such a refusal is checked by a lookup under our id before it may become a rejection.
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
    upstream = gw.primary()
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
            record = await _insert(gw, principal, req, upstream)
    else:
        record = await _insert(gw, principal, req, upstream)
    if record.status != TaskStatus.QUEUED or record.upstream_task_id is not None:
        return created_object(record)  # idempotent retry of an existing task
    return created_object(await _submit(gw, record, upstream, _upstream_body(gw, record)))


async def _same_request(gw: Gateway, principal: Principal, req: Text2VideoRequest) -> TaskRecord | None:
    if req.external_task_id is None:
        return None
    existing = await gw.tasks.by_external_id(principal.user_id, req.external_task_id)
    return existing if existing is not None and existing.request_hash == _fingerprint(req) else None


async def _insert(
    gw: Gateway, principal: Principal, req: Text2VideoRequest, upstream: Upstream
) -> TaskRecord:
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
            return record
        except Refused as exc:
            raise money.refused(exc, record, reserve) from None
        except DuplicateTaskId:
            continue
        except DuplicateExternalId:
            existing = await gw.tasks.by_external_id(principal.user_id, req.external_task_id or "")
            if existing is not None and existing.request_hash == fingerprint:
                return existing
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
    gw: Gateway, record: TaskRecord, upstream: Upstream, body: dict[str, Any], *, accepted: bool = False
) -> TaskRecord:
    """Call upstream for a queued row. Two tries at most; the second only when upstream confirmed the
    first created nothing (its external_task_id uniqueness makes even that retry safe). A refusal that
    may mean "already exists" adopts the task found under our id instead of rejecting the row.

    ``accepted``: the client already holds this task's id (refresher path), so a proven rejection is not
    turned into a hidden row here; the ``UpstreamError`` goes back to the caller to retry or fail."""
    for _attempt in range(2):
        try:
            created = await upstream.client.create(body, record.id)
        except UpstreamError as exc:
            refused = exc.outcome is Outcome.ABSENT
            if refused and exc.code not in _MAYBE_DUPLICATE:
                await _refused(gw, record, exc, accepted)
            if refused:  # perhaps "external_task_id already exists": this row was sent before
                log.warning("upstream refused task %s with %s; looking for it first", record.id, exc.code)
            else:
                log.warning("ambiguous upstream create for task %s: %s", record.id, exc.code)
            try:
                found = await upstream.client.find_by_external_id(record.id)
            except UpstreamError:
                return await _accept_unconfirmed(gw, record)
            if found is None:
                if refused:  # nothing under our id: a real refusal
                    await _refused(gw, record, exc, accepted)
                continue  # confirmed absent: safe to send again
            created = found
        return await _mark_submitted(gw, record, upstream, created)
    return await _accept_unconfirmed(gw, record)


async def _refused(gw: Gateway, record: TaskRecord, exc: UpstreamError, accepted: bool) -> NoReturn:
    """Upstream proved it made nothing: hide the row and tell the client, or (``accepted``) let the
    refresher decide between waiting and failing."""
    if accepted:
        raise exc
    await _reject(gw, record, exc)
    raise client_error(exc) from None


async def _mark_submitted(
    gw: Gateway, record: TaskRecord, upstream: Upstream, ut: UpstreamTask
) -> TaskRecord:
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
    if await move(gw, record, TaskStatus.QUEUED, **changes):
        record.status = status.value
        record.upstream_task_id = ut.task_id
        record.updated_at = now
        record.next_poll_at = next_poll
        return record
    return await gw.tasks.get(record.id) or record


async def _accept_unconfirmed(gw: Gateway, record: TaskRecord) -> TaskRecord:
    """Upstream's state is unknown: answer 200 with our id, let the refresher settle it soon."""
    soon = gw.now_ms() + 1000
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
    upstream = gw.upstream_for(record.upstream_account_id)
    return await _submit(gw, record, upstream, _upstream_body(gw, record), accepted=True)


async def get(gw: Gateway, principal: Principal, ident: str, base_url: str | None = None) -> dict[str, Any]:
    record = await gw.tasks.find_for_user(principal.user_id, ident)
    if record is None:
        raise NotFound(f"task {ident!r} does not exist")
    return task_object(record, public_videos(gw, record, base_url))


def _page_param(raw: str | None, name: str, default: int, maximum: int) -> int:
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidParameter(f"{name}: must be an integer between 1 and {maximum} (got {raw!r})") from None
    if not 1 <= value <= maximum:
        raise InvalidParameter(f"{name}: must be between 1 and {maximum} (got {value})")
    return value


async def list_page(
    gw: Gateway,
    principal: Principal,
    page_num: str | None,
    page_size: str | None,
    base_url: str | None = None,
) -> list[dict[str, Any]]:
    num = _page_param(page_num, "pageNum", 1, PAGE_NUM_MAX)
    size = _page_param(page_size, "pageSize", 30, PAGE_SIZE_MAX)
    records = await gw.tasks.list_for_user(principal.user_id, (num - 1) * size, size)
    return [task_object(r, public_videos(gw, r, base_url)) for r in records]
