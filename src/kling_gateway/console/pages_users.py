"""Users & keys (create a user, issue a key shown once, revoke, disable) and Money (credit/debit with a
note, balance, statement). A refused form comes back with the service's message beside its field."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from ..domain.pricing import from_micro
from ..storage.console import SessionRow
from . import api
from .web import Console, Form, redirect


async def _users_page(
    c: Console, request: Request, session: SessionRow, forms: dict[str, Form], issued: Any = None
) -> Response:
    gw = c.gateway()
    context = {
        "page": "users",
        "users": await api.users(gw),
        "keys": await api.keys(gw),
        "forms": {"user": Form({}), "key": Form({}), **forms},
        "issued": issued,
    }
    status = 400 if any(f.errors for f in forms.values()) else 200
    return c.render(request, "users.html", context, session=session, status=status)


def _expires(form: Form) -> float | None:
    raw = form.get("expires_days")
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value <= 36_500:
        form.error("expires_days", "must be a number of days between 0 and 36500")
    return value


def users_routes(r: APIRouter, c: Console) -> None:
    @r.get("/users")
    async def users(request: Request) -> Response:
        return await _users_page(c, request, await c.session(request), {})

    @r.post("/users")
    async def create_user(request: Request) -> Response:
        session = await c.session(request)
        form = await c.form(request, session)
        try:
            await api.create_user(c.gateway(), form.get("name"))
        except api.ApiError as exc:
            form.error("name", str(exc))
            return await _users_page(c, request, session, {"user": form})
        return redirect("/users")

    @r.post("/users/{name}/disabled")
    async def set_disabled(request: Request, name: str) -> Response:
        session = await c.session(request)
        form = await c.form(request, session)
        try:
            await api.set_user_disabled(c.gateway(), name, form.get("disabled") == "true")
        except api.ApiError as exc:
            return c.render(
                request, "missing.html", {"what": str(exc)}, session=session, status=404
            )
        return redirect("/users")

    @r.post("/keys")
    async def issue_key(request: Request) -> Response:
        session = await c.session(request)
        form = await c.form(request, session)
        expires = _expires(form)
        models = [m for m in form.get("models").replace(",", " ").split() if m]
        if len(form.get("name")) > 64:
            form.error("name", "must be at most 64 characters")
        if not form.get("user"):
            form.error("user", "is required")
        issued = None
        if not form.errors:
            try:
                issued = await api.issue_key(
                    c.gateway(),
                    form.get("user"),
                    name=form.get("name"),
                    aksk=form.get("kind") == "aksk",
                    models=models,
                    expires_days=expires,
                )
            except api.ApiError as exc:
                form.error(exc.field, str(exc))
        # Shown in this one answer only: the page is not cached (Cache-Control: no-store) and the
        # secret is not stored anywhere it could be rendered from again.
        return await _users_page(c, request, session, {"key": form}, issued)

    @r.post("/keys/{key_id}/revoke")
    async def revoke(request: Request, key_id: int) -> Response:
        session = await c.session(request)
        await c.form(request, session)
        try:
            await api.revoke_key(c.gateway(), key_id)
        except api.ApiError as exc:
            return c.render(
                request, "missing.html", {"what": str(exc)}, session=session, status=404
            )
        return redirect("/users")


async def _money_page(
    c: Console, request: Request, session: SessionRow, form: Form, status: int = 200
) -> Response:
    gw = c.gateway()
    user = form.get("user")
    balance, entries = None, []
    if user and "user" not in form.errors:
        try:
            balance = await api.balance(gw, user)
            entries = await api.statement(gw, user)
        except api.ApiError as exc:
            form.error("user", str(exc))
            status = 400
    context = {
        "page": "money",
        "form": form,
        "users": [u.name for u, _ in await api.users(gw)],
        "balance": balance,
        "entries": entries,
        "credits": lambda m: from_micro(m) if m >= 0 else "-" + from_micro(-m),
    }
    return c.render(request, "money.html", context, session=session, status=status)


def money_routes(r: APIRouter, c: Console) -> None:
    @r.get("/money")
    async def money(request: Request) -> Response:
        return await _money_page(
            c, request, await c.session(request), Form(dict(request.query_params))
        )

    @r.post("/money")
    async def adjust(request: Request) -> Response:
        session = await c.session(request)
        form = await c.form(request, session)
        if form.get("direction") not in ("credit", "debit"):
            form.error("direction", "must be credit or debit")
        if not form.get("amount"):
            form.error("amount", "is required")
        if not form.errors:
            try:
                await api.adjust(
                    c.gateway(),
                    form.get("user"),
                    form.get("amount"),
                    debit=form.get("direction") == "debit",
                    note=form.get("note") or None,
                )
            except api.ApiError as exc:
                form.error(exc.field, str(exc))
        if form.errors:
            return await _money_page(c, request, session, form, 400)
        return redirect("/money?" + urlencode({"user": form.get("user")}))
