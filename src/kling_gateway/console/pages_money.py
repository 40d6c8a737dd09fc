"""Money: credit or debit a user with a note, the balance, the statement (and its CSV), the user's
price multiplier. A refused form comes back with the admin API's message beside its field."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from ..storage.console import SessionRow
from . import api, forms
from .web import Console, Form, redirect, security_headers


async def _money_page(
    c: Console, request: Request, session: SessionRow, form: Form, status: int = 200
) -> Response:
    gw = c.gateway()
    user = form.get("user")
    chosen = None
    if user and "user" not in form.errors:
        try:
            chosen = {
                "balance": (await api.balance(gw, user))["balance"],
                "user": await api.user(gw, user),
                "entries": (await api.statement(gw, user))["items"],
            }
        except api.ApiError as exc:
            forms.refused(form, exc)
            status = 400
    context = {
        "page": "money",
        "form": form,
        "users": [u["name"] for u in await api.users(gw)],
        "chosen": chosen,
    }
    return c.render(request, "money.html", context, session=session, status=status)


def _back(form: Form) -> Response:
    return redirect("/money?" + urlencode({"user": form.get("user")}))


def money_routes(r: APIRouter, c: Console) -> None:
    @r.get("/money")
    async def money(request: Request) -> Response:
        form = Form(dict(request.query_params))
        return await _money_page(c, request, await c.session(request), form)

    @r.post("/money")
    async def adjust(request: Request) -> Response:
        session = await c.session(request)
        form = await c.form(request, session)
        if form.get("direction") not in ("credit", "debit"):
            form.error("direction", "must be credit or debit")
        else:
            work = api.adjust(
                c.gateway(),
                form.get("user"),
                form.get("amount"),
                form.values.get("note") or None,
                debit=form.get("direction") == "debit",
            )
            try:
                await work
            except api.ApiError as exc:
                forms.refused(form, exc)
        if form.errors:
            return await _money_page(c, request, session, form, 400)
        return _back(form)

    @r.post("/money/multiplier")
    async def multiplier(request: Request) -> Response:
        session = await c.session(request)
        form = await c.form(request, session)
        try:
            await api.set_multiplier(c.gateway(), form.get("user"), form.get("multiplier"))
        except api.ApiError as exc:
            forms.refused(form, exc)
            return await _money_page(c, request, session, form, 400)
        return _back(form)

    @r.get("/money/statement.csv")
    async def statement_csv(request: Request) -> Response:
        session = await c.session(request)
        user = request.query_params.get("user", "")
        try:
            text = await api.statement_csv(c.gateway(), user)
        except api.ApiError as exc:
            return c.missing(request, session, str(exc))
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in user)[:64]
        disposition = f'attachment; filename="statement-{safe}.csv"'
        headers = {"Content-Disposition": disposition}
        return security_headers(Response(text, media_type="text/csv", headers=headers))
