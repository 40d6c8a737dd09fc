"""Rendering and the request plumbing every console page shares: templates (autoescaped), security
headers, the signed-in session, form bodies with their CSRF check."""

from __future__ import annotations

import datetime as dt
import importlib.resources
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, quote

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from ..mirror.service import Mirror
from ..services.gateway import Gateway
from ..storage.console import SessionRow
from . import auth, csrf
from .throttle import SignInThrottle

PREFIX = "/console"
COOKIE = "kgw_console"
MAX_FORM_BYTES = 64 * 1024


class SignInRequired(Exception):
    """No valid session: the page answers with the sign-in page, never with data."""


class Refused(Exception):
    """A write without the session's CSRF token or from another origin."""


def _when(ms: int | None) -> str:
    if ms is None:
        return "-"
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("kling_gateway.console", "templates"),
        autoescape=True,  # every value is escaped unless a template says otherwise (none does)
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    env.filters["q"] = lambda value: quote(str(value), safe="")  # a path segment or query value
    return env


def static_dir() -> str:
    return str(importlib.resources.files("kling_gateway.console") / "static")


def security_headers(response: Response, media: Iterable[str] = ()) -> Response:
    """No inline script or style anywhere: every script is a static file of ours. ``media`` adds the
    origins a <video> on this page plays from (the upstream's result host)."""
    media_src = " ".join(["'self'", *sorted(set(media))])
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"media-src {media_src}; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
        "form-action 'self'; object-src 'none'"
    )
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"
    return response


@dataclass
class Form:
    values: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)

    def get(self, name: str) -> str:
        return self.values.get(name, "").strip()

    def error(self, name: str, message: str) -> None:
        self.errors.setdefault(name, message)


@dataclass
class Console:
    gateway: Callable[[], Gateway]
    mirror: Callable[[], Mirror]
    templates: jinja2.Environment = field(default_factory=_environment)
    throttle: SignInThrottle = field(default_factory=SignInThrottle)

    def render(
        self,
        request: Request,
        name: str,
        context: dict[str, Any],
        *,
        session: SessionRow | None = None,
        status: int = 200,
        media: Iterable[str] = (),
    ) -> Response:
        html = self.templates.get_template(name).render(
            request=request, csrf=session.csrf if session else "", prefix=PREFIX, **context
        )
        return security_headers(HTMLResponse(html, status_code=status), media)

    def missing(self, request: Request, session: SessionRow, what: str) -> Response:
        context = {"what": what, "page": ""}
        return self.render(request, "missing.html", context, session=session, status=404)

    async def session(self, request: Request) -> SessionRow:
        row = await auth.find_session(self.gateway(), request.cookies.get(COOKIE))
        if row is None:
            raise SignInRequired
        return row

    async def form(self, request: Request, session: SessionRow | None) -> Form:
        """The posted form, only when it comes from our origin with this session's CSRF token."""
        if not csrf.same_origin(request, self.gateway().settings.public_base_url):
            raise Refused("the form was not sent from this console's origin")
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            raise Refused("the form is too large")
        parsed = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        values = {k: v[-1] for k, v in parsed.items()}
        if session is not None and not csrf.token_matches(session.csrf, values.get(csrf.FIELD)):
            raise Refused("the form's CSRF token is missing or wrong; reload the page")
        return Form(values)


def redirect(path: str) -> Response:
    return security_headers(RedirectResponse(PREFIX + path, status_code=303))
