"""Users & keys: the lists, create a user, issue a key (its secret shown once), revoke; one user's
page (rename, disable/enable, limits) and one key's page (label, expiry, models, IP allow-list,
limits). Names travel in query strings and form bodies, never in paths, so any name works."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from ..storage.console import SessionRow
from . import api, forms
from .web import Console, Form, redirect


async def _users_page(
    c: Console, request: Request, session: SessionRow, forms_: dict[str, Form], issued: Any = None
) -> Response:
    gw = c.gateway()
    context = {
        "page": "users",
        "users": await api.users(gw),
        "keys": await api.keys(gw),
        "forms": {"user": Form({}), "key": Form({}), **forms_},
        "issued": issued,
    }
    status = 400 if any(f.errors for f in forms_.values()) else 200
    return c.render(request, "users.html", context, session=session, status=status)


def _key_body(form: Form, now_ms: int) -> dict[str, Any]:
    """The key settings the form carries, as PATCH /admin/v1/keys/{id} takes them."""
    body: dict[str, Any] = forms.limits(form)
    if form.get("expires_days"):
        body["expires_at"] = forms.expires_at(form, now_ms)
    elif form.get("no_expiry") == "true":
        body["expires_at"] = None
    if "models" in form.values:
        body["models"] = forms.names(form.get("models"))
    if "allowed_ips" in form.values:
        body["allowed_ips"] = forms.names(form.get("allowed_ips"))
    if "name" in form.values:
        body["name"] = form.get("name")
    return body


def users_routes(r: APIRouter, c: Console) -> None:
    @r.get("/users")
    async def users(request: Request) -> Response:
        return await _users_page(c, request, await c.session(request), {})

    @r.post("/users")
    async def create_user(request: Request) -> Response:
        session = await c.session(request)
        form = await c.form(request, session)
        try:
            await api.create_user(c.gateway(), form.values.get("name", ""))
        except api.ApiError as exc:
            forms.refused(form, exc)
            return await _users_page(c, request, session, {"user": form})
        return redirect("/users")

    @r.post("/keys")
    async def issue_key(request: Request) -> Response:
        session = await c.session(request)
        form = await c.form(request, session)
        gw = c.gateway()
        body = {"kind": form.get("kind") or "sk", **_key_body(form, gw.now_ms())}
        issued = None
        if not form.errors:
            try:
                issued = await api.issue_key(gw, form.get("user"), body)
            except api.ApiError as exc:
                forms.refused(form, exc)
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
            return c.missing(request, session, str(exc))
        return redirect("/users")


async def _user_page(
    c: Console, request: Request, session: SessionRow, name: str, form: Form | None = None
) -> Response:
    gw = c.gateway()
    try:
        user = await api.user(gw, name)
    except api.ApiError as exc:
        return c.missing(request, session, str(exc))
    context = {
        "page": "users",
        "u": user,
        "keys": await api.keys(gw, name),
        "form": form or Form({}),
    }
    status = 400 if form is not None and form.errors else 200
    return c.render(request, "user.html", context, session=session, status=status)


async def _key_page(
    c: Console, request: Request, session: SessionRow, key_id: str, form: Form | None = None
) -> Response:
    try:
        k = await api.key(c.gateway(), int(key_id) if key_id.isdigit() else -1)
    except api.ApiError as exc:
        return c.missing(request, session, str(exc))
    context = {"page": "users", "k": k, "form": form or Form({})}
    status = 400 if form is not None and form.errors else 200
    return c.render(request, "key.html", context, session=session, status=status)


def user_routes(r: APIRouter, c: Console) -> None:
    @r.get("/user")
    async def user(request: Request) -> Response:
        session = await c.session(request)
        return await _user_page(c, request, session, request.query_params.get("name", ""))

    @r.post("/user")
    async def update_user(request: Request) -> Response:
        """Rename, disable/enable or set limits: whichever fields the form carries."""
        session = await c.session(request)
        form = await c.form(request, session)
        name = form.values.get("user", "")
        body: dict[str, Any] = forms.limits(form)
        if "name" in form.values and form.values["name"] != name:
            body["name"] = form.values["name"]
        if "disabled" in form.values:
            body["disabled"] = form.get("disabled") == "true"
        try:
            user = await api.update_user(c.gateway(), name, body)
        except api.ApiError as exc:
            forms.refused(form, exc)
            return await _user_page(c, request, session, name, form)
        return redirect("/user?" + urlencode({"name": user["name"]}))

    @r.get("/key")
    async def key(request: Request) -> Response:
        session = await c.session(request)
        return await _key_page(c, request, session, request.query_params.get("id", ""))

    @r.post("/key")
    async def update_key(request: Request) -> Response:
        session = await c.session(request)
        form = await c.form(request, session)
        key_id = form.get("id")
        gw = c.gateway()
        body = _key_body(form, gw.now_ms())
        if not form.errors:
            try:
                await api.update_key(gw, int(key_id) if key_id.isdigit() else -1, body)
            except api.ApiError as exc:
                forms.refused(form, exc)
        if form.errors:
            return await _key_page(c, request, session, key_id, form)
        return redirect("/key?" + urlencode({"id": key_id}))
