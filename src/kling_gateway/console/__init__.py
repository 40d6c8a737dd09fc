"""The operator's web console at ``/console``: server-rendered Jinja2 pages, htmx for the live
parts, uPlot for the chart, every file served from this package (nothing from a CDN, nothing to
build).

Every page needs a signed-in session; every write needs the session's CSRF token and our origin.
Pages reach the gateway only through ``console/api.py``, which calls the admin API's services."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, FastAPI
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles

from ..mirror.service import Mirror
from ..services.gateway import Gateway
from . import pages_auth, pages_channels, pages_money, pages_tasks, pages_users
from .web import PREFIX, Console, Refused, SignInRequired, redirect, security_headers, static_dir


def install(app: FastAPI, gateway: Callable[[], Gateway], mirror: Callable[[], Mirror]) -> None:
    console = Console(gateway, mirror)
    router = APIRouter(prefix=PREFIX, include_in_schema=False)
    pages_auth.routes(router, console)
    pages_tasks.routes(router, console)
    pages_users.users_routes(router, console)
    pages_users.user_routes(router, console)
    pages_money.money_routes(router, console)
    pages_channels.channel_routes(router, console)
    pages_channels.price_routes(router, console)

    @router.get("")
    async def bare() -> Response:
        return redirect("/")

    app.include_router(router)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=static_dir()), name="console-static")

    async def sign_in(request: Request, exc: Exception) -> Response:
        if request.headers.get(
            "hx-request"
        ):  # a poll of an expired session: htmx loads the sign-in page
            response = security_headers(HTMLResponse("", status_code=401))
            response.headers["HX-Redirect"] = f"{PREFIX}/login"
            return response
        return redirect("/login")

    async def refused(request: Request, exc: Exception) -> Response:
        html = console.templates.get_template("refused.html").render(
            prefix=PREFIX, reason=str(exc), csrf="", request=request
        )
        return security_headers(HTMLResponse(html, status_code=403))

    app.add_exception_handler(SignInRequired, sign_in)
    app.add_exception_handler(Refused, refused)
