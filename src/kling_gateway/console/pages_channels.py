"""Channels (add with credentials that never come back, probe, enable/disable, health) and Prices &
models (the price table, set one price, the model catalogue with its routes)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from ..storage.console import SessionRow
from . import api
from .web import Console, Form, redirect

KINDS = ("silent", "sound", "voice")


async def _channels_page(
    c: Console, request: Request, session: SessionRow, form: Form, status: int = 200
) -> Response:
    context = {"page": "channels", "channels": await api.channels(c.gateway()), "form": form}
    return c.render(request, "channels.html", context, session=session, status=status)


def channel_routes(r: APIRouter, c: Console) -> None:
    @r.get("/channels")
    async def channels(request: Request) -> Response:
        return await _channels_page(c, request, await c.session(request), Form({}))

    @r.post("/channels")
    async def add(request: Request) -> Response:
        session = await c.session(request)
        form = await c.form(request, session)
        for name in ("name", "base_url"):
            if not form.get(name):
                form.error(name, "is required")
        creds = {k: form.get(k) or None for k in ("access_key", "secret_key", "api_key")}
        if not form.errors:
            try:
                await api.add_channel(c.gateway(), form.get("name"), form.get("base_url"), **creds)
            except api.ApiError as exc:
                form.error(_field_of(str(exc)), str(exc))
        if form.errors:
            # The credentials are never sent back, not even into the re-rendered form.
            kept = {k: v for k, v in form.values.items() if k in ("name", "base_url")}
            return await _channels_page(c, request, session, Form(kept, form.errors), 400)
        return redirect("/channels")

    @r.post("/channels/{name}/enabled")
    async def set_enabled(request: Request, name: str) -> Response:
        session = await c.session(request)
        form = await c.form(request, session)
        try:
            await api.set_channel_enabled(c.gateway(), name, form.get("enabled") == "true")
        except api.ApiError as exc:
            return c.render(
                request, "missing.html", {"what": str(exc)}, session=session, status=404
            )
        return redirect("/channels")

    @r.post("/channels/{name}/probe")
    async def probe(request: Request, name: str) -> Response:
        session = await c.session(request)
        await c.form(request, session)
        try:
            await api.probe_channel(c.gateway(), name)
        except api.ApiError as exc:
            return c.render(
                request, "missing.html", {"what": str(exc)}, session=session, status=404
            )
        return redirect("/channels")


def _field_of(message: str) -> str:
    """The service names the field first ("base_url: …"); otherwise it is about the credentials."""
    head = message.split(":", 1)[0].strip()
    if head in ("name", "base_url"):
        return head
    return "name" if "name" in message.split()[:3] else "access_key"


async def _prices_page(
    c: Console, request: Request, session: SessionRow, form: Form, status: int = 200
) -> Response:
    gw = c.gateway()
    context = {
        "page": "prices",
        "prices": await api.prices(gw),
        "models": await api.models(gw),
        "form": form,
        "kinds": KINDS,
    }
    return c.render(request, "prices.html", context, session=session, status=status)


def price_routes(r: APIRouter, c: Console) -> None:
    @r.get("/prices")
    async def prices(request: Request) -> Response:
        return await _prices_page(c, request, await c.session(request), Form({}))

    @r.post("/prices")
    async def set_price(request: Request) -> Response:
        session = await c.session(request)
        form = await c.form(request, session)
        if not form.get("model"):
            form.error("model", "is required")
        if form.get("kind") not in KINDS:
            form.error("kind", f"must be one of {', '.join(KINDS)}")
        try:
            Decimal(form.get("credits"))
        except InvalidOperation:
            form.error("credits", "must be a number of credits per second")
        if not form.errors:
            try:
                await api.set_price(
                    c.gateway(),
                    form.get("model"),
                    form.get("mode") or "*",
                    form.get("kind"),
                    form.get("credits"),
                )
            except api.ApiError as exc:
                form.error(exc.field, str(exc))
        if form.errors:
            return await _prices_page(c, request, session, form, 400)
        return redirect("/prices")
