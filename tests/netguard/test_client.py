"""guarded_session and fetch against a real aiohttp server on 127.0.0.1.

"Refused without connecting" is proven with a server that *is* reachable: every request it receives
is recorded, so a refused hop that still connected would show up in ``server.hits``.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web

from kling_gateway.netguard import (
    GuardResolver,
    Resolver,
    UrlGuard,
    UrlRefused,
    fetch,
    guarded_session,
)

TIMEOUT = aiohttp.ClientTimeout(total=5, connect=2)


@dataclass
class Server:
    port: int
    hits: list[tuple[str, str, bytes, dict[str, str]]] = field(default_factory=list)
    redirect_to: dict[str, tuple[int, str]] = field(default_factory=dict)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def paths(self) -> list[str]:
        return [path for _, path, _, _ in self.hits]


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    state = Server(port=0)

    async def handle(request: web.Request) -> web.StreamResponse:
        state.hits.append(
            (request.method, request.path, await request.read(), dict(request.headers))
        )
        if request.path in state.redirect_to:
            status, location = state.redirect_to[request.path]
            return web.Response(status=status, headers={"Location": location})
        return web.Response(text=f"{request.method} {request.path}")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    state.port = runner.addresses[0][1]
    try:
        yield state
    finally:
        await runner.cleanup()


def dns(answers: dict[str, list[list[str]]]) -> Resolver:
    """Rebinding: a resolver whose answer for a name changes per lookup (the last one repeats)."""
    calls: dict[str, int] = {}

    async def resolve(host: str, port: int) -> list[str]:
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        n = calls.get(host, 0)
        calls[host] = n + 1
        sequence = answers[host]
        return sequence[min(n, len(sequence) - 1)]

    return resolve


async def test_allow_listed_loopback_is_reached(server: Server) -> None:
    guard = UrlGuard(["127.0.0.1"])
    async with guarded_session(guard, timeout=TIMEOUT) as session:
        async with fetch(session, guard, "POST", server.url("/hook"), data=b"{}") as response:
            assert response.status == 200
            assert await response.text() == "POST /hook"
        async with session.get(server.url("/plain")) as response:  # the session alone, no fetch
            assert response.status == 200
    assert server.paths() == ["/hook", "/plain"]


async def test_loopback_refused_when_not_allow_listed(server: Server) -> None:
    guard = UrlGuard()
    async with guarded_session(guard, timeout=TIMEOUT) as session:
        with pytest.raises(UrlRefused) as via_fetch:
            async with fetch(session, guard, "GET", server.url("/hook")):
                pass
        with pytest.raises(UrlRefused) as via_session:
            async with session.get(server.url("/hook")):
                pass
        with pytest.raises(UrlRefused):
            async with session.get(f"http://2130706433:{server.port}/hook"):
                pass
    assert via_fetch.value.rule == via_session.value.rule == "loopback"
    assert server.hits == []


async def test_name_resolving_to_loopback_is_refused_at_connect(server: Server) -> None:
    guard = UrlGuard(resolver=dns({"hooks.example.com": [["127.0.0.1"]]}))
    async with guarded_session(guard, timeout=TIMEOUT) as session:
        with pytest.raises(UrlRefused) as exc:
            async with session.get(server.url("/hook", host="hooks.example.com")):
                pass
    assert exc.value.rule == "loopback"
    assert server.hits == []


async def test_dns_rebinding_between_check_and_connect(server: Server) -> None:
    """check() sees a public address, the connector's lookup 127.0.0.1: connect-time screen wins."""
    resolver = dns({"rebind.example.com": [["93.184.216.34"], ["127.0.0.1"]]})
    guard = UrlGuard(resolver=resolver)
    async with guarded_session(guard, timeout=TIMEOUT) as session:
        with pytest.raises(UrlRefused) as exc:
            async with fetch(session, guard, "GET", server.url("/hook", host="rebind.example.com")):
                pass
    assert exc.value.rule == "loopback"
    assert server.hits == []


async def test_connector_drops_refused_addresses_and_keeps_allowed(server: Server) -> None:
    guard = UrlGuard(
        ["127.0.0.1"], resolver=dns({"mixed.example.com": [["10.0.0.1", "127.0.0.1"]]})
    )
    resolver = GuardResolver(guard)
    assert [
        r["host"] for r in await resolver.resolve("mixed.example.com", 80, socket.AF_UNSPEC)
    ] == ["127.0.0.1"]
    async with guarded_session(guard, timeout=TIMEOUT) as session:
        async with session.get(server.url("/hook", host="mixed.example.com")) as response:
            assert response.status == 200
        with pytest.raises(
            UrlRefused
        ) as exc:  # fetch's own check is stricter: mixed answers are refused
            async with fetch(session, guard, "GET", server.url("/hook", host="mixed.example.com")):
                pass
    assert exc.value.rule == "private"
    assert server.paths() == ["/hook"]


@pytest.mark.parametrize(
    ("location", "rule"),
    [
        ("http://10.0.0.1/", "private"),
        ("http://169.254.169.254/latest/meta-data/", "metadata"),
        ("http://[::1]/", "loopback"),
        ("http://0xa9fea9fe/", "metadata"),
        ("http://0x0a.1/", "private"),
        ("http://localhost/", "internal-name"),
        ("file:///etc/passwd", "scheme"),
        ("http://user:pw@93.184.216.34/", "userinfo"),
    ],
)
async def test_redirect_to_refused_target_is_refused(
    server: Server, location: str, rule: str
) -> None:
    server.redirect_to["/start"] = (302, location)
    guard = UrlGuard(["127.0.0.1"])
    async with guarded_session(guard, timeout=TIMEOUT) as session:
        with pytest.raises(UrlRefused) as exc:
            async with fetch(session, guard, "GET", server.url("/start")):
                pass
    assert exc.value.rule == rule
    assert server.paths() == ["/start"]


async def test_redirect_to_reachable_but_refused_address_never_connects(server: Server) -> None:
    """The server is allowed by *name*; by literal 127.0.0.1 it is not, and is never hit."""
    guard = UrlGuard(["hooks.test"], resolver=dns({"hooks.test": [["127.0.0.1"]]}))
    server.redirect_to["/start"] = (307, server.url("/secret"))
    async with guarded_session(guard, timeout=TIMEOUT) as session:
        with pytest.raises(UrlRefused) as exc:
            async with fetch(session, guard, "GET", server.url("/start", host="hooks.test")):
                pass
        assert exc.value.rule == "loopback"
        with pytest.raises(UrlRefused):  # aiohttp's own redirect following is screened too
            async with session.get(server.url("/start", host="hooks.test")):
                pass
    assert server.paths() == ["/start", "/start"]


async def test_allowed_redirects_are_followed(server: Server) -> None:
    guard = UrlGuard(["127.0.0.1", "hooks.test"], resolver=dns({"hooks.test": [["127.0.0.1"]]}))
    server.redirect_to["/a"] = (301, "/b")  # relative
    server.redirect_to["/b"] = (302, server.url("/c", host="hooks.test"))  # absolute, other origin
    async with guarded_session(guard, timeout=TIMEOUT) as session:
        headers = {"Authorization": "Bearer secret", "X-Trace": "1"}
        async with fetch(session, guard, "GET", server.url("/a"), headers=headers) as response:
            assert response.status == 200
            assert await response.text() == "GET /c"
            assert str(response.url) == server.url("/c", host="hooks.test")
    assert server.paths() == ["/a", "/b", "/c"]
    assert server.hits[1][3]["Authorization"] == "Bearer secret"  # same origin keeps credentials
    assert "Authorization" not in server.hits[2][3]  # a new origin does not get them
    assert server.hits[2][3]["X-Trace"] == "1"


@pytest.mark.parametrize(
    ("status", "method", "body"),
    [
        (303, "GET", b""),
        (302, "GET", b""),
        (301, "GET", b""),
        (307, "POST", b"payload"),
        (308, "POST", b"payload"),
    ],
)
async def test_redirect_method_rules(server: Server, status: int, method: str, body: bytes) -> None:
    guard = UrlGuard(["127.0.0.1"])
    server.redirect_to["/post"] = (status, "/next")
    async with guarded_session(guard, timeout=TIMEOUT) as session:
        headers = {"Content-Type": "application/json"}
        async with fetch(
            session, guard, "POST", server.url("/post"), data=b"payload", headers=headers
        ) as resp:
            assert resp.status == 200
    assert server.hits[1][:3] == (method, "/next", body)
    assert ("Content-Type" in server.hits[1][3]) is (method == "POST")


async def test_redirect_limits(server: Server) -> None:
    guard = UrlGuard(["127.0.0.1"])
    server.redirect_to["/loop"] = (302, "/loop")
    async with guarded_session(guard, timeout=TIMEOUT) as session:
        with pytest.raises(aiohttp.TooManyRedirects):
            async with fetch(session, guard, "GET", server.url("/loop"), max_redirects=3):
                pass
        assert len(server.hits) == 4
        async with fetch(session, guard, "GET", server.url("/loop"), max_redirects=0) as response:
            assert response.status == 302  # "don't follow" hands the 3xx back
        with pytest.raises(TypeError):
            async with fetch(session, guard, "GET", server.url("/loop"), allow_redirects=True):
                pass
    assert len(server.hits) == 5


async def test_session_refuses_proxies(server: Server) -> None:
    guard = UrlGuard(["127.0.0.1"])
    async with guarded_session(guard, timeout=TIMEOUT) as session:
        with pytest.raises(ValueError, match="proxies"):
            async with session.get(server.url("/x"), proxy=server.url("/")):
                pass
    assert server.hits == []
