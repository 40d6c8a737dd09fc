"""Create, read and list text2video tasks.

Create follows one rule above all: **the task row exists before upstream is called**, and once
upstream may have been called the client never gets an answer that invites a blind retry
(502/503/504/5001). Either we confirm upstream's state and answer, or we accept the task under our
public id and the refresher reconciles it by asking upstream for our id (sent as Kling's
``external_task_id``).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from ..domain.ids import IdMinter
from ..domain.request import Text2VideoRequest, extract_model_name, validate_text2video
from ..domain.task import TaskStatus
from ..errors import (
    BadRequest,
    ConcurrencyLimited,
    InvalidParameter,
    RateLimited,
    UpstreamFailure,
)
from ..netguard import UrlGuard, UrlRefused
from ..settings import Settings
from ..storage.ports import Tasks
from ..storage.tasks import DuplicateExternalId, DuplicateTaskId, Refused, TaskRecord
from .auth import Principal
from .catalog import Catalog
from .channels import Channel, ChannelSet
from .ledger import Ledger, refused, reserve_for
from .limits import Limiter
from .submit import Submitter
from .wire import created_object

log = logging.getLogger("kling_gateway.tasks")

_MINT_TRIES = 5


def parse_body(raw: bytes) -> Any:
    if not raw.strip():
        raise BadRequest("request body is empty; send a JSON object")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(
            f"request body is not valid JSON: {exc.msg} at position {exc.pos}"
        ) from exc


def _fingerprint(req: Text2VideoRequest) -> str:
    """Same external_task_id + same fingerprint = an idempotent retry of the same create."""
    doc = [req.model_name, req.callback_url, req.upstream_body]
    return hashlib.sha256(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass(frozen=True, slots=True)
class Creation:
    """The create use case: validate, choose an account, admit, reserve and insert, submit."""

    tasks: Tasks
    channels: ChannelSet
    catalog: Catalog
    ledger: Ledger
    limits: Limiter | None
    submitter: Submitter
    guard: UrlGuard
    ids: IdMinter
    settings: Settings
    clock: Callable[[], float]

    def validate(self, principal: Principal, body: Any) -> Text2VideoRequest:
        if not isinstance(body, dict):
            raise BadRequest("request body must be a JSON object")
        public = extract_model_name(body)
        principal.check_model(public)
        resolved = self.catalog.resolve(public)
        if resolved is None:
            names = ", ".join(self.catalog.public_names())
            raise InvalidParameter(f"model_name: unknown model {public!r} (available: {names})")
        upstream_model, caps = resolved
        req = validate_text2video(
            body,
            caps=caps,
            upstream_model=upstream_model,
            strict=self.settings.strict_fields,
            max_external_id_len=self.settings.max_external_task_id_len,
        )
        if req.callback_url is not None:
            # syntax and literal addresses only: no DNS on the request path (delivery re-checks)
            try:
                self.guard.check_syntax(req.callback_url, "callback_url")
            except UrlRefused as exc:
                raise InvalidParameter(exc.reason) from None
        return req

    async def create(self, principal: Principal, raw: bytes) -> dict[str, Any]:
        req = self.validate(principal, parse_body(raw))
        upstream = await self._choose(principal, req)
        if not isinstance(upstream, Channel):
            return created_object(upstream)  # idempotent retry of a task the client already has
        limits = self.limits
        if limits is not None and limits.enabled:
            model = str(req.upstream_body.get("model_name", ""))  # stored as tasks.upstream_model
            async with limits.hold(upstream.account_id, model):
                try:
                    await limits.admit(principal, upstream.account_id, model)
                except (RateLimited, ConcurrencyLimited):
                    # an idempotent retry of a task the client has is not refused by its own limit
                    existing = await self._same_request(principal, req)
                    if existing is None:
                        raise
                    return created_object(existing)
                record, fresh = await self._insert(principal, req, upstream)
        else:
            record, fresh = await self._insert(principal, req, upstream)
        if record.status != TaskStatus.QUEUED or record.upstream_task_id is not None:
            return created_object(record)  # idempotent retry of an existing task
        if not fresh:
            # a retry of a row still queued (its first request died, or still waits upstream):
            # only the account it was sent to can tell whether it holds the task, so only that one
            # may be sent it again
            upstream = self.channels.for_task(record.upstream_account_id)
        sub = self.submitter
        body = sub.upstream_body(record)
        return created_object(await sub.submit(record, upstream, body, resent=not fresh))

    async def _choose(self, principal: Principal, req: Text2VideoRequest) -> Channel | TaskRecord:
        """The account this create goes to; when none can take it now, the client's own earlier
        task for the same request if there is one, else 429/1303 (all busy) or 503/5001 (none
        usable)."""
        model = str(req.upstream_body.get("model_name", ""))
        channel = await self.channels.pick(model)
        if channel is not None:
            return channel
        existing = await self._same_request(principal, req)
        if existing is not None:
            return existing
        busy, why = self.channels.why_none(model)
        log.warning("no upstream account can take model %s: %s", model, why)
        if busy:
            raise ConcurrencyLimited(
                f"every upstream account for model {model!r} is at capacity; retry later"
            )
        raise UpstreamFailure(
            f"no upstream account is available for model {model!r} right now; retry later",
            code=5001,
        )

    async def _same_request(
        self, principal: Principal, req: Text2VideoRequest
    ) -> TaskRecord | None:
        if req.external_task_id is None:
            return None
        existing = await self.tasks.by_external_id(principal.user_id, req.external_task_id)
        if existing is not None and existing.request_hash == _fingerprint(req):
            return existing
        return None

    async def _insert(
        self, principal: Principal, req: Text2VideoRequest, upstream: Channel
    ) -> tuple[TaskRecord, bool]:
        """The new row and True, or the row an earlier request made with the same
        external_task_id and body and False."""
        fingerprint = _fingerprint(req)
        # Priced before anything is stored: an unpriced model is refused before any upstream call.
        reserve = self.ledger.reserve_micro(principal, req)
        for _ in range(_MINT_TRIES):
            record = self._record(principal, req, upstream, fingerprint, reserve)
            try:
                paid = reserve_for(record, reserve) if reserve > 0 else None
                await self.tasks.insert(record, reserve=paid)
                return record, True
            except Refused as exc:
                raise refused(exc, reserve) from None
            except DuplicateTaskId:
                continue
            except DuplicateExternalId:
                external = req.external_task_id or ""
                existing = await self.tasks.by_external_id(principal.user_id, external)
                if existing is not None and existing.request_hash == fingerprint:
                    return existing, False
                raise InvalidParameter(
                    f"external_task_id: {req.external_task_id!r} is already used by another task "
                    "with a different body; use a new external_task_id"
                ) from None
        raise InvalidParameter("task id space busy; retry")  # pragma: no cover - 5 in one ms

    def _record(
        self,
        principal: Principal,
        req: Text2VideoRequest,
        upstream: Channel,
        fingerprint: str,
        reserve: int,
    ) -> TaskRecord:
        now = int(self.clock() * 1000)
        return TaskRecord(
            id=self.ids.mint(now),
            user_id=principal.user_id,
            key_id=principal.key.id,
            public_model=req.model_name,
            upstream_model=str(req.upstream_body.get("model_name", "")),
            status=TaskStatus.QUEUED.value,
            status_msg="",
            external_task_id=req.external_task_id,
            request_hash=fingerprint,
            request_json=orjson.dumps(req.upstream_body).decode(),
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
            next_poll_at=now + int((self.settings.upstream_read_timeout + 5) * 1000),
            poll_attempts=0,
            reserved_micro=reserve,
        )
