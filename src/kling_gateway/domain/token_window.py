"""When a client's JWT may be used: its ``nbf``/``exp`` claims judged as numbers of any size.

A token's claims are the client's JSON, so they can be NaN (every comparison false: valid forever),
infinite, or integers too large for a float (``float()`` raises). Kling's own clients sign for 30
minutes; a token meant to live for years is a leaked credential waiting to happen, so a lifetime
past the operator's maximum is refused like a bad signature (401/1002), before any conversion.
"""

from __future__ import annotations

import math

from kling_gateway.errors import AuthError


def token_window(nbf: object, exp: object, now: float, max_lifetime: int) -> tuple[float, float]:
    """``(nbf, exp)`` as floats within reach of ``now``; AuthError for claims never acceptable.

    The lifetime counts from when the token starts to be usable: ``exp - max(nbf, now)``.
    """
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (nbf, exp)):
        raise AuthError("Authorization is invalid: exp and nbf must be numbers", code=1002)
    assert isinstance(nbf, int | float) and isinstance(exp, int | float)  # for the type checker
    if any(isinstance(v, float) and not math.isfinite(v) for v in (nbf, exp)):
        raise AuthError("Authorization is invalid: exp and nbf must be finite numbers", code=1002)
    if exp > max(nbf, now) + max_lifetime:  # exact: Python compares int and float without rounding
        raise AuthError(
            "Authorization is invalid: token lifetime (exp after nbf or now) exceeds "
            f"the gateway's maximum of {max_lifetime} s; sign tokens with a nearer exp",
            code=1002,
        )
    if nbf > now + max_lifetime:  # not usable for longer than any token may live
        raise AuthError("Authorization is not yet valid", code=1003)
    # Bounded above by now + 2 * max_lifetime; anything before the epoch is simply "past".
    return float(max(nbf, 0)), float(max(exp, 0))
