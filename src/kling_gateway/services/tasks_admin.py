"""Operator task views: searches and one task in full (request body, cost, upstream account and id,
callback deliveries with their attempts, status history). The history is each status with when and
who saw it ({status, at, by}); tasks created before migration 0011 have none (``null``)."""

from __future__ import annotations

from typing import Any

import orjson

from ..domain.pricing import from_micro
from ..domain.task_filter import parse_filter
from ..mirror.service import public_videos
from ..storage import task_views
from ..storage.tasks import TaskRecord
from . import webhooks
from .admin import AdminError, AdminNotFound, show_task
from .gateway import Gateway

KIND = "text2video"


async def search(gw: Gateway, query: dict[str, str]) -> dict[str, Any]:
    try:
        f = parse_filter(query)
    except ValueError as exc:
        raise AdminError(str(exc)) from None
    uid = await _user_id(gw, f.user) if f.user is not None else None
    records, more = await task_views.search(gw.engine, f, uid)
    names = await task_views.user_names(gw.engine, {r.user_id for r in records})
    accounts = await _account_names(gw)
    return {
        "page": f.page,
        "page_size": f.page_size,
        "has_more": more,
        "items": [summary(r, names.get(r.user_id, ""), accounts) for r in records],
    }


async def _user_id(gw: Gateway, name: str) -> int:
    user = await gw.accounts.get_user(name)
    if user is None:
        raise AdminNotFound(f"no user named {name!r}")
    return user.id


async def _account_names(gw: Gateway) -> dict[int, str]:
    return {a.id: a.name for a in await gw.upstreams.accounts()}


def summary(r: TaskRecord, user: str, accounts: dict[int, str]) -> dict[str, Any]:
    return {
        "task_id": r.id,
        "kind": KIND,
        "user": user,
        "key_id": r.key_id,
        "model_name": r.public_model,
        "upstream_model": r.upstream_model,
        "status": r.status,
        "status_msg": r.status_msg,
        "external_task_id": r.external_task_id,
        "mode": r.mode,
        "duration": r.duration,
        "created_at": r.created_at,
        "updated_at": r.updated_at,
        "upstream_account": accounts.get(r.upstream_account_id) if r.upstream_account_id else None,
        "upstream_task_id": r.upstream_task_id,
        "prompt": _prompt(r.request_json),
        "charged": None if r.charged_micro is None else from_micro(r.charged_micro),
    }


def _prompt(request_json: str) -> str:
    """The prompt, for lists: what an operator recognises a task by."""
    try:
        body = orjson.loads(request_json)
    except orjson.JSONDecodeError:
        return ""
    prompt = body.get("prompt") if isinstance(body, dict) else None
    return prompt if isinstance(prompt, str) else ""


async def find(gw: Gateway, ident: str, user: str | None) -> TaskRecord:
    """By public id, or by the client's ``external_task_id`` (that ``user``'s, or the one task of
    any user that has it), as ``tasks show`` finds it."""
    return await show_task(gw, ident, user)


async def detail(
    gw: Gateway, ident: str, user: str | None = None, base_url: str | None = None
) -> dict[str, Any]:
    """``videos``: the result as the client sees it now (signed mirror links under ``base_url``)."""
    r = await find(gw, ident, user)
    names = await task_views.user_names(gw.engine, {r.user_id})
    out = summary(r, names.get(r.user_id, ""), await _account_names(gw))
    out.update(
        request=orjson.loads(r.request_json),
        callback_url=r.callback_url,
        result=orjson.loads(r.result_json) if r.result_json else None,
        origin_result=orjson.loads(r.origin_result_json) if r.origin_result_json else None,
        videos=public_videos(gw, r, base_url) or [],
        poll_attempts=r.poll_attempts,
        next_poll_at=r.next_poll_at,
        status_history=orjson.loads(r.status_history) if r.status_history else None,
        cost=await cost(gw, r),
        deliveries=[
            webhooks.entry_json(e, operator=True) for e in await webhooks.delivery_log(gw, r.id)
        ],
    )
    return out


async def cost(gw: Gateway, r: TaskRecord) -> dict[str, Any]:
    """What the task reserved, what it was charged (settled) and what came back (released or
    refunded), from its ledger entries."""
    reserved = settled = returned = 0
    reason = None
    for e in await task_views.ledger_for_task(gw.engine, r.id):
        if e.kind == "reserve":
            reserved += -e.amount_micro
        elif e.kind == "close":
            settled += e.charged_micro or 0
            returned += e.amount_micro
            reason = e.reason
    return {
        "reserved": from_micro(reserved),
        "settled": from_micro(settled) if reason == "settle" else None,
        "refunded": from_micro(returned) if reason == "refund" else None,
        "released": from_micro(returned) if reason == "settle" else None,
        "closed": reason is not None,
    }
