"""UrlGuard with no network: refusal tables, URL syntax, the allow-list, DNS via a fake resolver."""

from __future__ import annotations

import pickle
import socket
from collections.abc import Awaitable, Callable

import pytest

from kling_gateway.errors import ConfigError
from kling_gateway.netguard import UrlGuard, UrlRefused
from kling_gateway.settings import Settings

# (url, rule) — refused by the text alone, so check_syntax and check both refuse with no DNS.
REFUSED_V4 = [
    ("http://127.0.0.1/", "loopback"),
    ("http://127.255.255.254:8080/x", "loopback"),
    ("http://10.0.0.5/", "private"),
    ("http://172.16.0.1/", "private"),
    ("http://172.31.255.255/", "private"),
    ("http://192.168.1.1/", "private"),
    ("http://169.254.1.1/", "link-local"),
    ("http://169.254.169.254/latest/meta-data/", "metadata"),
    ("http://169.254.170.2/v2/credentials", "metadata"),
    ("http://100.100.100.200/latest/meta-data/", "metadata"),
    ("http://168.63.129.16/", "metadata"),
    ("http://0.0.0.0/", "unspecified"),
    ("http://0.1.2.3/", "reserved"),
    ("http://224.0.0.1/", "multicast"),
    ("http://239.255.255.250/", "multicast"),
    ("http://255.255.255.255/", "broadcast"),
    ("http://240.0.0.1/", "reserved"),
    ("http://100.64.0.1/", "shared"),
    ("http://100.127.255.254/", "shared"),
    ("http://192.0.2.1/", "documentation"),
    ("http://198.18.0.1/", "benchmarking"),
    # other spellings of 127.0.0.1 / 169.254.169.254 that browsers, curl and inet_aton accept
    ("http://2130706433/", "loopback"),
    ("http://0x7f000001/", "loopback"),
    ("http://0x7f.1/", "loopback"),
    ("http://0x7F.0.0.1/", "loopback"),
    ("http://0177.0.0.1/", "loopback"),
    ("http://017700000001/", "loopback"),
    ("http://127.1/", "loopback"),
    ("http://127.0.1/", "loopback"),
    ("http://127.0.0.1./", "loopback"),
    ("http://2852039166/", "metadata"),
    ("http://0xa9.0xfe.0xa9.0xfe/", "metadata"),
    ("http://0/", "unspecified"),
    ("http://１２７.０.０.１/", "loopback"),  # fullwidth digits, normalised by IDNA
]

REFUSED_V6 = [
    ("http://[::1]/", "loopback"),
    ("http://[::1]:8080/", "loopback"),
    ("http://[::]/", "unspecified"),
    ("http://[fe80::1]/", "link-local"),
    ("http://[fc00::1]/", "private"),
    ("http://[fd12:3456::1]/", "private"),
    ("http://[fd00:ec2::254]/", "metadata"),
    ("http://[ff02::1]/", "multicast"),
    ("http://[fec0::1]/", "reserved"),
    ("http://[::ffff:127.0.0.1]/", "loopback"),
    ("http://[::ffff:7f00:1]/", "loopback"),
    ("http://[::ffff:10.0.0.1]/", "private"),
    ("http://[::ffff:169.254.169.254]/", "metadata"),
    ("http://[::127.0.0.1]/", "loopback"),  # deprecated IPv4-compatible
    ("http://[::8.8.8.8]/", "reserved"),
    ("http://[64:ff9b::10.0.0.1]/", "private"),  # NAT64
    ("http://[64:ff9b::127.0.0.1]/", "loopback"),
    ("http://[64:ff9b:1::1]/", "reserved"),
    ("http://[2002:7f00:1::1]/", "loopback"),  # 6to4 of 127.0.0.1
    ("http://[2002:a9fe:a9fe::1]/", "metadata"),
    ("http://[2001:db8::1]/", "documentation"),
    ("http://[2001::1]/", "reserved"),  # Teredo
    ("http://[100::1]/", "reserved"),
    ("http://[4000::1]/", "reserved"),  # outside global unicast
]

PUBLIC = [
    "http://93.184.216.34/",
    "https://93.184.216.34:8443/hook?x=1",
    "http://8.8.8.8/",
    "http://1.1.1.1/",
    "http://172.15.255.255/",
    "http://172.32.0.1/",
    "http://100.63.255.255/",
    "http://100.128.0.1/",
    "http://169.253.255.255/",
    "http://[2606:2800:220:1::1]/",
    "https://[2606:4700:4700::1111]:443/",
    "http://[::ffff:93.184.216.34]/",
    "http://[64:ff9b::8.8.8.8]/",
    "http://[2002:5db8:d822::1]/",  # 6to4 of 93.184.216.34
    "https://example.com/",
    "https://hooks.example.com:8443/path?q=1#frag",
    "HTTPS://Example.COM/",
    "https://example.com./",
    "http://xn--bcher-kva.example/",
    "http://bücher.example/",
    "http://under_score.example.com/",
]

BAD_SYNTAX = [
    ("ftp://example.com/", "scheme"),
    ("file:///etc/passwd", "scheme"),
    ("gopher://example.com:70/_x", "scheme"),
    ("javascript:alert(1)", "scheme"),
    ("data:text/plain,hi", "scheme"),
    ("ws://example.com/", "scheme"),
    ("//example.com/hook", "scheme"),
    ("example.com/hook", "scheme"),
    ("", "scheme"),
    ("http://", "host"),
    ("http:///path", "host"),
    ("http:example.com", "host"),
    ("http://user:pass@example.com/", "userinfo"),
    ("http://user@example.com/", "userinfo"),
    ("http://@example.com/", "userinfo"),
    ("http://example.com@10.0.0.1/", "userinfo"),
    ("http://example.com:0/", "port"),
    ("http://example.com:65536/", "port"),
    ("http://example.com:99999/", "port"),
    ("http://example.com\\@10.0.0.1/", "malformed"),
    ("http://example.com /", "malformed"),
    (" http://example.com/", "malformed"),
    ("http://exa\tmple.com/", "malformed"),
    ("http://example.com/\n", "malformed"),
    ("http://1.2.3.4.5/", "malformed"),
    ("http://256.0.0.1/", "malformed"),
    ("http://08.0.0.1/", "malformed"),
    ("http://example.123/", "malformed"),
    ("http://[fe80::1%25eth0]/", "host"),
    ("http://%31%32%37.0.0.1/", "host"),
    ("http://a..example.com/", "host"),
    ("http://localhost/", "internal-name"),
    ("http://LOCALHOST:8000/", "internal-name"),
    ("http://localhost./", "internal-name"),
    ("http://api.localhost/", "internal-name"),
    ("http://printer.local/", "internal-name"),
    ("http://metadata.google.internal/computeMetadata/v1/", "internal-name"),
    ("http://db.internal/", "internal-name"),
    ("http://router.home.arpa/", "internal-name"),
    ("http://metadata/", "internal-name"),
    ("http://redis:6379/", "internal-name"),
]


def resolver_of(
    answers: dict[str, list[str]], calls: list[str] | None = None
) -> Callable[[str, int], Awaitable[list[str]]]:
    async def resolve(host: str, port: int) -> list[str]:
        if calls is not None:
            calls.append(host)
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return answers[host]

    return resolve


@pytest.mark.parametrize(("url", "rule"), REFUSED_V4 + REFUSED_V6 + BAD_SYNTAX)
async def test_refused_without_dns(url: str, rule: str) -> None:
    calls: list[str] = []
    guard = UrlGuard(resolver=resolver_of({}, calls))
    with pytest.raises(UrlRefused) as sync:
        guard.check_syntax(url)
    with pytest.raises(UrlRefused) as checked:
        await guard.check(url, field="mirror")
    assert (sync.value.rule, checked.value.rule) == (rule, rule)
    assert sync.value.field == "callback_url" and str(sync.value).startswith("callback_url: ")
    assert str(checked.value).startswith("mirror: ")
    assert calls == []


@pytest.mark.parametrize("url", PUBLIC)
async def test_public_passes(url: str) -> None:
    guard = UrlGuard(resolver=_public_dns)
    guard.check_syntax(url)
    addresses = await guard.check(url)
    assert addresses and all(guard.is_allowed_ip(a) for a in addresses)


async def _public_dns(host: str, port: int) -> list[str]:
    return ["93.184.216.34", "2606:2800:220:1::1"]


def test_message_names_field_host_and_rule() -> None:
    guard = UrlGuard()
    with pytest.raises(UrlRefused) as exc:
        guard.check_syntax("http://10.0.0.5/hook")
    assert exc.value.reason == str(exc.value) == "callback_url: host 10.0.0.5 is a private address"
    with pytest.raises(UrlRefused) as exc:
        guard.check_syntax("http://0x7f.1/")
    assert exc.value.reason == "callback_url: host 0x7f.1 (= 127.0.0.1) is a loopback address"
    with pytest.raises(UrlRefused) as exc:
        guard.check_syntax("http://[::ffff:10.0.0.1]/")
    assert "private address (embedded IPv4 10.0.0.1)" in exc.value.reason
    copy = pickle.loads(pickle.dumps(exc.value))
    assert (copy.reason, copy.rule, copy.field) == (exc.value.reason, "private", "callback_url")


@pytest.mark.parametrize(
    ("answer", "rule"),
    [
        (["10.0.0.5"], "private"),
        (["127.0.0.1"], "loopback"),
        (["::1"], "loopback"),
        (["169.254.169.254"], "metadata"),
        (["fe80::1%eth0"], "link-local"),
        (["::ffff:192.168.0.1"], "private"),
        (["93.184.216.34", "10.0.0.5"], "private"),  # mixed: the connection may use either
        (["2606:2800:220:1::1", "fd00::1"], "private"),
        (["not-an-ip"], "malformed"),
    ],
)
async def test_dns_answers_are_judged(answer: list[str], rule: str) -> None:
    guard = UrlGuard(resolver=resolver_of({"hooks.example.com": answer}))
    guard.check_syntax(
        "https://hooks.example.com/x"
    )  # the name itself is fine; DNS is not consulted
    with pytest.raises(UrlRefused) as exc:
        await guard.check("https://hooks.example.com/x")
    assert exc.value.rule == rule
    assert exc.value.reason.startswith("callback_url: host hooks.example.com resolves to ")


async def test_dns_public_only_returns_addresses() -> None:
    calls: list[str] = []
    guard = UrlGuard(
        resolver=resolver_of({"hooks.example.com": ["93.184.216.34", "2606:2800:220:1::1"]}, calls)
    )
    assert await guard.check("https://Hooks.Example.com./x") == [
        "93.184.216.34",
        "2606:2800:220:1::1",
    ]
    assert calls == ["hooks.example.com"]


async def test_dns_failure_is_oserror_not_refusal() -> None:
    guard = UrlGuard(resolver=resolver_of({"empty.example.com": []}))
    with pytest.raises(socket.gaierror):
        await guard.check("https://missing.example.com/")
    with pytest.raises(socket.gaierror):
        await guard.check("https://empty.example.com/")


@pytest.mark.parametrize(
    ("allow", "url", "answer"),
    [
        (["127.0.0.1"], "http://127.0.0.1:8080/", None),
        (["127.0.0.1"], "http://[::ffff:127.0.0.1]/", None),  # same socket as 127.0.0.1
        (["10.0.0.0/8"], "http://10.1.2.3/", None),
        (["10.0.0.1/8"], "http://10.200.0.1/", None),  # host bits tolerated
        (["fd00::/8"], "http://[fd00::5]/", None),
        (["169.254.169.254"], "http://169.254.169.254/", None),
        (["10.0.0.0/8"], "https://svc.example.com/", ["10.9.9.9"]),
        (["localhost"], "http://localhost:9000/", ["127.0.0.1", "::1"]),
        (["Hooks.Corp.Internal."], "http://hooks.corp.internal/", ["10.0.0.7"]),
        (["hooks.example.com"], "https://hooks.example.com/", ["10.0.0.7", "169.254.169.254"]),
    ],
)
async def test_allow_list(allow: list[str], url: str, answer: list[str] | None) -> None:
    host = url.split("://", 1)[1].split("/", 1)[0].split(":", 1)[0]
    guard = UrlGuard(allow, resolver=resolver_of({host: answer or []}))
    guard.check_syntax(url)
    assert await guard.check(url)
    with pytest.raises(UrlRefused):
        await UrlGuard(resolver=resolver_of({host: answer or []})).check(url)


@pytest.mark.parametrize(
    ("allow", "url"),
    [
        (["127.0.0.1"], "http://127.0.0.2/"),
        (["127.0.0.1"], "http://localhost/"),  # names are allow-listed by name
        (["127.0.0.1"], "http://[::1]/"),
        (["127.0.0.1"], "http://[64:ff9b::127.0.0.1]/"),  # a NAT64 gateway is another host
        (["10.0.0.0/8"], "http://192.168.0.1/"),
        (["hooks.example.com"], "http://sub.hooks.example.com./"),  # exact names only
        (["169.254.0.0/16"], "http://169.254.169.254/"),  # metadata needs its own entry
        (["0.0.0.0/0"], "http://169.254.169.254/"),
        (["::/0"], "http://[fd00:ec2::254]/"),
    ],
)
async def test_allow_list_is_narrow(allow: list[str], url: str) -> None:
    guard = UrlGuard(allow, resolver=resolver_of({"sub.hooks.example.com": ["10.0.0.1"]}))
    with pytest.raises(UrlRefused):
        await guard.check(url)


def test_broad_allow_still_opens_ordinary_ranges() -> None:
    guard = UrlGuard(["0.0.0.0/0"])
    assert guard.is_allowed_ip("10.0.0.1") and guard.is_allowed_ip("127.0.0.1")
    assert not guard.is_allowed_ip("169.254.169.254")


@pytest.mark.parametrize(
    "entry", ["http://10.0.0.1/", "10.0.0.0/33", "*.example.com", "bad host", "1.2.3.4.5", "a/b"]
)
def test_bad_allow_entries_fail_at_start(entry: str) -> None:
    with pytest.raises(ConfigError, match="KGW_OUTBOUND_ALLOW"):
        UrlGuard([entry])


def test_from_settings_reads_outbound_allow() -> None:
    guard = UrlGuard.from_settings(
        Settings(outbound_allow=" 127.0.0.1, 10.0.0.0/8 ,hooks.lan,", _env_file=None)
    )
    assert guard.is_allowed_ip("127.0.0.1") and guard.is_allowed_ip("10.3.3.3")
    assert not guard.is_allowed_ip("192.168.0.1")
    guard.check_syntax("http://hooks.lan/")
    with pytest.raises(UrlRefused):
        guard.check_syntax("http://other.lan/")


@pytest.mark.parametrize(
    ("ip", "allowed"),
    [
        ("93.184.216.34", True),
        ("2606:2800:220:1::1", True),
        ("127.0.0.1", False),
        ("::1", False),
        ("fe80::1%eth0", False),
        ("", False),
        ("example.com", False),
        ("0x7f.1", False),
    ],
)
def test_is_allowed_ip(ip: str, allowed: bool) -> None:
    assert UrlGuard().is_allowed_ip(ip) is allowed
