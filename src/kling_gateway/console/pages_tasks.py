"""Tasks: the filtered, paged list and one task with its request, cost, upstream side, webhook
attempts (redeliver) and its video playing inline."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import orjson
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from ..domain.pricing import from_micro
from ..domain.task import TaskStatus
from ..mirror.service import base_url_for
from ..storage.console_reads import TaskFilter
from . import api
from .web import Console, Form, redirect

PAGE_SIZE = 25
STATUSES = [s.value for s in TaskStatus]


def _day_ms(form: Form, name: str, *, end: bool = False) -> int | None:
    raw = form.get(name)
    if not raw:
        return None
    try:
        day = dt.datetime.strptime(raw, "%Y-%m-%d").replace(tzinfo=dt.UTC)
    except ValueError:
        form.error(name, "must be a date, YYYY-MM-DD")
        return None
    return int(day.timestamp() * 1000) + (86_400_000 if end else 0)


async def _filter(c: Console, form: Form) -> TaskFilter:
    status = form.get("status")
    if status and status not in STATUSES:
        form.error("status", f"must be one of {', '.join(STATUSES)}")
    user_id = None
    if form.get("user"):
        try:
            user_id = await api.user_id(c.gateway(), form.get("user"))
        except api.ApiError as exc:
            form.error("user", str(exc))
    return TaskFilter(
        status=status or None,
        user_id=user_id,
        model=form.get("model") or None,
        since_ms=_day_ms(form, "since"),
        until_ms=_day_ms(form, "until", end=True),
    )


def _page(form: Form) -> int:
    raw = form.get("page") or "1"
    if not raw.isdigit() or not 1 <= int(raw) <= 10_000:
        form.error("page", "must be a whole number from 1")
        return 1
    return int(raw)


def _pretty(text: str | None) -> str:
    if not text:
        return ""
    try:
        return orjson.dumps(orjson.loads(text), option=orjson.OPT_INDENT_2).decode()
    except orjson.JSONDecodeError:
        return text


def _origin(url: str) -> str | None:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme in ("http", "https") else None


def routes(r: APIRouter, c: Console) -> None:
    @r.get("/tasks")
    async def task_list(request: Request) -> Response:
        session = await c.session(request)
        form = Form(dict(request.query_params))
        f, page = await _filter(c, form), _page(form)
        rows = (
            []
            if form.errors
            else await api.tasks(c.gateway(), f, (page - 1) * PAGE_SIZE, PAGE_SIZE + 1)
        )
        keep = {k: v for k, v in form.values.items() if k != "page" and v}
        context: dict[str, Any] = {
            "page": "tasks",
            "form": form,
            "rows": rows[:PAGE_SIZE],
            "statuses": STATUSES,
            "page_no": page,
            "prev": urlencode({**keep, "page": page - 1}) if page > 1 else None,
            "next": urlencode({**keep, "page": page + 1}) if len(rows) > PAGE_SIZE else None,
            "credits": from_micro,
        }
        status = 400 if form.errors else 200
        return c.render(request, "tasks.html", context, session=session, status=status)

    @r.get("/tasks/{task_id}")
    async def task_page(request: Request, task_id: str) -> Response:
        session = await c.session(request)
        gw = c.gateway()
        detail = await api.task(gw, task_id, base_url_for(gw.settings, str(request.base_url)))
        if detail is None:
            return c.render(
                request, "missing.html", {"what": f"task {task_id}"}, session=session, status=404
            )
        media = {o for v in detail.videos if (o := _origin(str(v.get("url", ""))))}
        context = {
            "page": "tasks",
            "d": detail,
            "t": detail.row.task,
            "request_body": _pretty(detail.row.task.request_json),
            "result": _pretty(detail.row.task.origin_result_json or detail.row.task.result_json),
            "credits": from_micro,
        }
        return c.render(request, "task.html", context, session=session, media=media)

    @r.post("/tasks/{task_id}/redeliver")
    async def redeliver(request: Request, task_id: str) -> Response:
        session = await c.session(request)
        form = await c.form(request, session)
        try:
            await api.redeliver(c.gateway(), form.get("delivery"))
        except api.ApiError as exc:
            return c.render(
                request, "missing.html", {"what": str(exc)}, session=session, status=404
            )
        return redirect(f"/tasks/{quote(task_id, safe='')}")
