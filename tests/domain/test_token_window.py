"""A client JWT's nbf/exp: any JSON number is judged, not blindly converted (NaN, inf, 10**400)."""

from __future__ import annotations

import pytest

from kling_gateway.domain.token_window import token_window
from kling_gateway.errors import AuthError

NOW = 1_800_000_000.0
DAY = 86_400

# (nbf, exp) -> the window, or the code refusing it
CASES: dict[str, tuple[object, object, tuple[float, float] | int]] = {
    "kling's 30 minutes": (NOW - 5, NOW + 1800, (NOW - 5, NOW + 1800)),
    "ints": (int(NOW), int(NOW) + 60, (NOW, NOW + 60)),
    "exactly the maximum": (0, NOW + DAY, (0.0, NOW + DAY)),
    "maximum counted from a future nbf": (NOW + 600, NOW + 600 + DAY, (NOW + 600, NOW + 600 + DAY)),
    "expired long ago": (0, 1, (0.0, 1.0)),  # the caller's clock check says 1004
    "before the epoch is past": (-(10**400), -(10**400), (0.0, 0.0)),
    "a second too long": (0, NOW + DAY + 1, 1002),
    "too long from a future nbf": (NOW + 600, NOW + 601 + DAY, 1002),
    "exp 1e300": (0, 1e300, 1002),
    "exp 10**400": (0, 10**400, 1002),
    "exp inf": (0, float("inf"), 1002),
    "exp nan": (0, float("nan"), 1002),
    "nbf nan": (float("nan"), NOW + 60, 1002),
    "nbf -inf": (float("-inf"), NOW + 60, 1002),
    "exp string": (0, "2000000000", 1002),
    "exp true": (0, True, 1002),
    "nbf null": (None, NOW + 60, 1002),
    "nbf 10**400, exp just after": (10**400, 10**400 + 1, 1003),
    "nbf a year ahead": (NOW + 365 * DAY, NOW + 365 * DAY + 60, 1003),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_token_window(case: str) -> None:
    nbf, exp, expected = CASES[case]
    if isinstance(expected, int):
        with pytest.raises(AuthError) as info:
            token_window(nbf, exp, NOW, DAY)
        assert info.value.code == expected and info.value.http_status == 401
    else:
        assert token_window(nbf, exp, NOW, DAY) == expected


def test_the_lifetime_message_names_the_maximum() -> None:
    with pytest.raises(AuthError, match="maximum of 3600 s"):
        token_window(0, NOW + 3601, NOW, 3600)
