"""The calling client's IP address, for key IP allow-lists (domain/ipallow.py).

``Authenticator.authenticate`` takes only the Authorization header (the hot routes call it that
way), so the address travels beside it: http/client_ip.py sets it for each HTTP request from the
ASGI scope's ``client`` (the peer, or what the server's proxy-header handling put there). Unset =
unknown, which an allow-list refuses.
"""

from __future__ import annotations

from contextvars import ContextVar

from ..domain.ipallow import ip_allowed
from ..errors import KlingError

CLIENT_IP: ContextVar[str | None] = ContextVar("kling_gateway_client_ip", default=None)
IP_REFUSED = (
    1304  # Kling's "IP whitelist policy", HTTP 429 (kling-api.md §5; why: domain/ipallow.py)
)


def check_client_ip(allowed: tuple[str, ...]) -> None:
    address = CLIENT_IP.get()
    if not ip_allowed(address, allowed):
        raise KlingError(
            "IP whitelist policy: this API key may not be used from "
            f"{address or 'an unknown address'}",
            code=IP_REFUSED,
        )
