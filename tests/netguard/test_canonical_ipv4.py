"""A literal IPv4 host must be written the one way the HTTP client accepts (dotted decimal), or the
callback is refused at submit instead of failing at every delivery for a day."""

from __future__ import annotations

import pytest

from kling_gateway.netguard import UrlGuard, UrlRefused
from kling_gateway.settings import Settings

# host -> the address it spells; every one is allowed here, so only its spelling can refuse it
NON_CANONICAL = {
    "2130706433": "127.0.0.1",
    "017700000001": "127.0.0.1",
    "0x7f000001": "127.0.0.1",
    "0x7f.1": "127.0.0.1",
    "0x7F.0.0.1": "127.0.0.1",
    "127.1": "127.0.0.1",
    "127.0.1": "127.0.0.1",
    "0177.0.0.1": "127.0.0.1",
    "127.000.000.001": "127.0.0.1",
    "1572395042": "93.184.216.34",
    "93.184.216.042": "93.184.216.34",
    "0x5d.0xb8.0xd8.0x22": "93.184.216.34",
}
CANONICAL = ["127.0.0.1", "127.0.0.1.", "93.184.216.34", "10.1.2.3", "0.0.0.0"]


def _guard() -> UrlGuard:
    allow = "127.0.0.0/8,10.0.0.0/8,0.0.0.0/32"
    return UrlGuard.from_settings(Settings(_env_file=None, outbound_allow=allow))


@pytest.mark.parametrize(("host", "address"), sorted(NON_CANONICAL.items()))
def test_non_canonical_ipv4_is_refused_naming_the_field(host: str, address: str) -> None:
    with pytest.raises(UrlRefused) as exc:
        _guard().check_syntax(f"http://{host}:8080/hook")
    assert exc.value.rule == "malformed"
    assert exc.value.reason == (
        f"callback_url: host {host.lower()} is not a canonical IPv4 address (write it as {address})"
    )


@pytest.mark.parametrize("host", CANONICAL)
def test_canonical_ipv4_passes(host: str) -> None:
    _guard().check_syntax(f"http://{host}:8080/hook")


def test_a_refused_address_still_names_its_rule_first() -> None:
    with pytest.raises(UrlRefused) as exc:
        UrlGuard().check_syntax("http://0x7f.1/")
    assert exc.value.rule == "loopback"
