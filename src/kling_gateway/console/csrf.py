"""Cross-site request forgery: every write carries the session's synchronizer token (hidden field
``csrf``) and comes from the console's own origin (``Origin``, else ``Referer``). SameSite=Strict on
the cookie is a third, independent layer."""

from __future__ import annotations

import hmac
from urllib.parse import urlsplit

from starlette.requests import Request

FIELD = "csrf"


def own_origins(request: Request, public_base_url: str | None) -> set[str]:
    """Where the request says it was sent to, plus KGW_PUBLIC_BASE_URL when a proxy fronts us."""
    origins = {f"{request.url.scheme}://{request.url.netloc}".lower()}
    if public_base_url:
        parts = urlsplit(public_base_url)
        origins.add(f"{parts.scheme}://{parts.netloc}".lower())
    return origins


def sender_origin(request: Request) -> str | None:
    origin = request.headers.get("origin")
    if origin and origin != "null":
        return origin.lower()
    referer = request.headers.get("referer")
    if referer:
        parts = urlsplit(referer)
        return f"{parts.scheme}://{parts.netloc}".lower()
    return None  # neither: a browser always sends Origin on a POST, so this is no browser form


def same_origin(request: Request, public_base_url: str | None) -> bool:
    sender = sender_origin(request)
    return sender is not None and sender in own_origins(request, public_base_url)


def token_matches(expected: str, submitted: str | None) -> bool:
    return submitted is not None and hmac.compare_digest(expected.encode(), submitted.encode())
