"""Create, read and list text2video tasks.

Create follows one rule above all: **the task row exists before upstream is called**, and once upstream may
have been called the client never gets an answer that invites a blind retry (502/503/504/5001). Either we
confirm upstream's state and answer, or we accept the task under our public id and the refresher
reconciles it by asking upstream for our id (sent as Kling's ``external_task_id``).
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import orjson

from ..domain.request import Text2VideoRequest, extract_model_name, validate_text2video
from ..domain.task import TaskStatus
from ..errors import (
    BadRequest,
    ConcurrencyLimited,
    InvalidParameter,
    RateLimited,
    UpstreamFailure,
)
from ..netguard import UrlRefused
from ..storage.tasks import DuplicateExternalId, DuplicateTaskId, Refused, TaskRecord
from . import money
from .auth import Principal
from .channels import Channel
from .gateway import Gateway
from .submit import resubmit, submit, upstream_body
from .wire import created_object

log = logging.getLogger("kling_gateway.tasks")

_MINT_TRIES = 5
# resubmit lives in submit.py; it stays importable from here, where callers knew it
__all__ = ["create", "parse_body", "resubmit", "validate"]


def parse_body(raw: bytes) -> Any:
    if not raw.strip():
        raise BadRequest("request body is empty; send a JSON object")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(
            f"request body is not valid JSON: {exc.msg} at position {exc.pos}"
        ) from exc


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
        model = str(
            req.upstream_body.get("model_name", "")
        )  # the value stored as tasks.upstream_model
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
    body = upstream_body(gw, record)
    return created_object(await submit(gw, record, upstream, body, resent=not fresh))


async def _choose(
    gw: Gateway, principal: Principal, req: Text2VideoRequest
) -> Channel | TaskRecord:
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
        raise ConcurrencyLimited(
            f"every upstream account for model {model!r} is at capacity; retry later"
        )
    raise UpstreamFailure(
        f"no upstream account is available for model {model!r} right now; retry later", code=5001
    )


async def _same_request(
    gw: Gateway, principal: Principal, req: Text2VideoRequest
) -> TaskRecord | None:
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
            await gw.tasks.insert(
                record, reserve=money.reserve_for(record, reserve) if reserve > 0 else None
            )
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
