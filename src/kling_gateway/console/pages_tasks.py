"""Tasks: the filtered, paged list and one task with its request, cost, upstream side, webhook
attempts (redeliver) and its video playing inline."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import orjson
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from ..domain.task import TaskStatus
from ..mirror.service import base_url_for
from . import api, forms
from .web import Console, Form, redirect

PAGE_SIZE = 25
STATUSES = [s.value for s in TaskStatus]
_SEARCH = ("status", "user", "model", "external_task_id", "page")


def _query(form: Form) -> dict[str, str]:
    """The filter form as GET /admin/v1/tasks's query: days become Unix ms, blanks are dropped."""
    query = {k: form.get(k) for k in _SEARCH if form.get(k)}
    since, until = forms.day_ms(form, "since"), forms.day_ms(form, "until", end=True)
    query.update({k: v for k, v in (("since", since), ("until", until)) if v is not None})
    query["page_size"] = str(PAGE_SIZE)
    return query


def _pretty(value: Any) -> str:
    return "" if value is None else orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()


def _origin(url: str) -> str | None:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme in ("http", "https") else None


def routes(r: APIRouter, c: Console) -> None:
    @r.get("/tasks")
    async def task_list(request: Request) -> Response:
        session = await c.session(request)
        form = Form(dict(request.query_params))
        query = _query(form)
        found: dict[str, Any] = {"items": [], "has_more": False, "page": 1}
        try:  # even after a bad date: the API's own refusal shows too
            found = await api.tasks(c.gateway(), query)
        except api.ApiError as exc:
            forms.refused(form, exc)
        if form.errors:
            found = {"items": [], "has_more": False, "page": 1}
        keep = {k: v for k, v in form.values.items() if k != "page" and v}
        page = found["page"]
        context: dict[str, Any] = {
            "page": "tasks",
            "form": form,
            "rows": found["items"],
            "statuses": STATUSES,
            "page_no": page,
            "prev": urlencode({**keep, "page": page - 1}) if page > 1 else None,
            "next": urlencode({**keep, "page": page + 1}) if found["has_more"] else None,
        }
        status = 400 if form.errors else 200
        return c.render(request, "tasks.html", context, session=session, status=status)

    @r.get("/tasks/{task_id}")
    async def task_page(request: Request, task_id: str) -> Response:
        session = await c.session(request)
        gw = c.gateway()
        try:
            t = await api.task(gw, task_id, base_url_for(gw.settings, str(request.base_url)))
        except api.ApiError as exc:
            return c.missing(request, session, str(exc))
        media = {o for v in t["videos"] if (o := _origin(str(v.get("url", ""))))}
        context = {
            "page": "tasks",
            "t": t,
            "request_body": _pretty(t["request"]),
            "result": _pretty(t["origin_result"] or t["result"]),
        }
        return c.render(request, "task.html", context, session=session, media=media)

    @r.post("/tasks/{task_id}/redeliver")
    async def redeliver(request: Request, task_id: str) -> Response:
        session = await c.session(request)
        form = await c.form(request, session)
        try:
            await api.redeliver(c.gateway(), form.get("delivery"))
        except api.ApiError as exc:
            return c.missing(request, session, str(exc))
        return redirect(f"/tasks/{quote(task_id, safe='')}")
