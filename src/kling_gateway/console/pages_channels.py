"""Channels (add with credentials that never come back, edit priority/weight/enabled, probe, health)
and Prices & models (the price table: set and delete a row; the catalogue: add and remove an alias).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from ..services.money_admin import KINDS
from ..storage.console import SessionRow
from . import api, forms
from .web import Console, Form, redirect

_CREDENTIALS = ("access_key", "secret_key", "api_key")


async def _channels_page(
    c: Console, request: Request, session: SessionRow, form: Form, status: int = 200
) -> Response:
    channels = await api.channels(c.gateway())
    context = {"page": "channels", "channels": channels, "form": form, "blank": Form({})}
    return c.render(request, "channels.html", context, session=session, status=status)


def _edits(form: Form) -> dict[str, Any]:
    """PATCH /admin/v1/channels/{name}'s fields from the edit form (a checkbox is sent only when
    ticked, so the form says it carries ``enabled`` with a hidden field)."""
    out: dict[str, Any] = {k: forms.number(form.get(k)) for k in ("priority", "weight")}
    if "has_enabled" in form.values:
        out["enabled"] = form.get("enabled") == "true"
    return out


def channel_routes(r: APIRouter, c: Console) -> None:
    @r.get("/channels")
    async def channels(request: Request) -> Response:
        return await _channels_page(c, request, await c.session(request), Form({}))

    @r.post("/channels")
    async def add(request: Request) -> Response:
        session = await c.session(request)
        form = await c.form(request, session)
        creds = {k: form.get(k) or None for k in _CREDENTIALS}
        try:
            await api.add_channel(c.gateway(), form.get("name"), form.get("base_url"), **creds)
        except api.ApiError as exc:
            forms.refused(form, exc)
            # The credentials are never sent back, not even into the re-rendered form.
            kept = {k: v for k, v in form.values.items() if k not in _CREDENTIALS}
            return await _channels_page(c, request, session, Form(kept, form.errors), 400)
        return redirect("/channels")

    @r.post("/channels/{name}/edit")
    async def edit(request: Request, name: str) -> Response:
        session = await c.session(request)
        form = await c.form(request, session)
        fields = {k: v for k, v in _edits(form).items() if v is not None}
        try:
            await api.update_channel(c.gateway(), name, **fields)
        except api.ApiError as exc:
            if exc.field == "channel":
                return c.missing(request, session, str(exc))
            forms.refused(form, exc)
            form.values["channel"] = name  # the row the errors belong to
            return await _channels_page(c, request, session, form, 400)
        return redirect("/channels")

    @r.post("/channels/{name}/probe")
    async def probe(request: Request, name: str) -> Response:
        session = await c.session(request)
        await c.form(request, session)
        try:
            await api.probe_channel(c.gateway(), name)
        except api.ApiError as exc:
            return c.missing(request, session, str(exc))
        return redirect("/channels")


async def _prices_page(
    c: Console, request: Request, session: SessionRow, form: Form, status: int = 200
) -> Response:
    gw = c.gateway()
    context = {
        "page": "prices",
        "prices": await api.prices(gw),
        "models": await api.models(gw),
        "form": form,
        "kinds": list(KINDS),
    }
    return c.render(request, "prices.html", context, session=session, status=status)


def price_routes(r: APIRouter, c: Console) -> None:
    async def done(
        request: Request,
        session: SessionRow,
        form: Form,
        work: Any,
        remap: dict[str, str] | None = None,
    ) -> Response:
        """Redirect after the change, or the page again with the refusal beside its field
        (``remap``: the API's field name → this form's, for the forms sharing the page)."""
        try:
            await work
        except api.ApiError as exc:
            shown = (remap or {}).get(exc.field, (remap or {}).get("*", exc.field))
            form.error(shown, str(exc))
            return await _prices_page(c, request, session, form, 400)
        return redirect("/prices")

    @r.get("/prices")
    async def prices(request: Request) -> Response:
        return await _prices_page(c, request, await c.session(request), Form({}))

    @r.post("/prices")
    async def set_price(request: Request) -> Response:
        session = await c.session(request)
        form = await c.form(request, session)
        fields = ("model_name", "mode", "kind", "credits_per_second")
        body = {k: form.get(k) or None for k in fields}
        return await done(request, session, form, api.set_price(c.gateway(), body))

    @r.post("/prices/delete")
    async def delete_price(request: Request) -> Response:
        session = await c.session(request)
        form = await c.form(request, session)
        model, mode, kind = (form.get(k) for k in ("model_name", "mode", "kind"))
        work = api.delete_price(c.gateway(), model, mode, kind)
        return await done(request, session, Form({}), work, {"*": "price"})

    @r.post("/models")
    async def map_model(request: Request) -> Response:
        session = await c.session(request)
        form = await c.form(request, session)
        work = api.map_model(c.gateway(), form.get("alias"), form.get("target"))
        return await done(request, session, form, work, {"target": "target", "*": "alias"})

    @r.post("/models/delete")
    async def unmap_model(request: Request) -> Response:
        session = await c.session(request)
        form = await c.form(request, session)
        work = api.unmap_model(c.gateway(), form.get("alias"))
        return await done(request, session, Form({}), work, {"*": "unmap"})
