"""Sign-in, sign-out and the overview (the page a fresh session lands on)."""

from __future__ import annotations

import time

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from . import api, auth
from .web import COOKIE, PREFIX, Console, Form, redirect


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _login_page(c: Console, request: Request, form: Form, status: int = 200) -> Response:
    return c.render(request, "login.html", {"form": form}, status=status)


def routes(r: APIRouter, c: Console) -> None:
    @r.get("/login")
    async def login_page(request: Request) -> Response:
        return _login_page(c, request, Form({}))

    @r.post("/login")
    async def login(request: Request) -> Response:
        form = await c.form(request, None)  # before a session exists: the Origin check only
        address, now = _client(request), time.monotonic()
        if c.throttle.blocked(address, now):
            form.error("token", "too many failed sign-ins; wait a minute")
            response = _login_page(c, request, form, 429)
            response.headers["Retry-After"] = str(c.throttle.retry_after(address, now))
            return response
        gw = c.gateway()
        verdict = await auth.check_token(gw, form.get("token"))
        if verdict is not auth.Verdict.OK:
            c.throttle.failed(address, now)
            message = (
                "no operator token exists; issue one with: kling-gateway console token"
                if verdict is auth.Verdict.OFF
                else "this is not the operator token"
            )
            form.error("token", message)
            return _login_page(c, request, form, 401)
        raw, _ = await auth.open_session(gw)
        response = redirect("/")
        response.set_cookie(
            COOKIE,
            raw,
            max_age=auth.SESSION_SECONDS,
            path=PREFIX,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    @r.post("/logout")
    async def logout(request: Request) -> Response:
        session = await c.session(request)
        await c.form(request, session)
        await auth.close_session(c.gateway(), request.cookies.get(COOKIE))
        response = redirect("/login")
        response.delete_cookie(COOKIE, path=PREFIX, httponly=True, samesite="strict")
        return response

    @r.get("/")
    async def overview(request: Request) -> Response:
        session = await c.session(request)
        data = await api.figures(c.gateway())
        return c.render(request, "overview.html", {"o": data, "page": "overview"}, session=session)

    @r.get("/overview/figures")
    async def figures(request: Request) -> Response:
        """The part htmx polls every few seconds."""
        session = await c.session(request)
        data = await api.figures(c.gateway())
        return c.render(request, "_figures.html", {"o": data}, session=session)
