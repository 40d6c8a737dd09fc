"""Upstream failures as the client sees them: Kling codes, our wording, upstream ids scrubbed.

Operator-side problems (our upstream credentials, account balance, IP allow-list) are not the client's
fault, so they surface as 5001 "temporarily unavailable" rather than as a 401/429 the client would try to
fix on its side; the operator sees the real code in the logs.
"""

from __future__ import annotations

from ..errors import (
    ConcurrencyLimited,
    InvalidParameter,
    KlingError,
    PermissionDenied,
    RateLimited,
    UpstreamFailure,
)
from ..upstream.client import UpstreamError

_OPERATOR_SIDE = frozenset({1000, 1001, 1002, 1003, 1004, 1100, 1101, 1102, 1304})


def client_error(exc: UpstreamError) -> KlingError:
    code = exc.code
    if code == 1303:
        return ConcurrencyLimited("parallel task over resource pack limit")
    if code == 1302:
        return RateLimited("Too many requests; upstream rate limit exceeded")
    if code in (1200, 1201):
        return InvalidParameter(f"upstream rejected the request: {exc.message}")
    if code in (1202, 1203):
        return InvalidParameter("model_name: the model is not available upstream")
    if code in (1300, 1301):
        return KlingError(exc.message or "Trigger the content security policy of the platform", code=code)
    if code == 1103:
        return PermissionDenied("upstream account may not use this model")
    if code in _OPERATOR_SIDE:
        return UpstreamFailure("upstream temporarily unavailable", code=5001)
    return UpstreamFailure("upstream temporarily unavailable", code=5001)
