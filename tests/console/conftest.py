"""Browser fixtures: one gateway + simulator per module on real sockets, Debian's Chromium driven by
Playwright. A browser that cannot start FAILS the tests (CI must install chromium), never skips
them. And the in-process ones: a client signed in to the console on the ASGI app, with its CSRF
token."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Dialog, Page, sync_playwright

from kling_gateway.console.auth import issue_token
from tests.conftest import Env
from tests.console.server import CHROMIUM, CHROMIUM_ARGS, Served, serve


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    s = serve(tmp_path_factory.mktemp("console"))
    try:
        yield s
    finally:
        s.stop.set()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        try:
            b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        except Exception as exc:
            pytest.fail(
                f"Chromium ({CHROMIUM}) did not start: install it (apt-get install chromium): {exc}"
            )
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        yield ctx
    finally:
        ctx.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    pg = context.new_page()
    pg.set_default_timeout(15_000)
    dialogs: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    pg.on("dialog", on_dialog)
    pg.dialogs = dialogs  # type: ignore[attr-defined]  # an alert() would mean injected script ran
    return pg


def sign_in(page: Page, served: Served) -> None:
    page.goto(f"{served.base_url}/console/")
    page.fill("#token", served.token)
    page.click("button[type=submit]")
    page.wait_for_selector("#figures")


ORIGIN = "http://gw"


async def client_of(env: Env, address: str = "10.0.0.1") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=env.app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url=ORIGIN)


@pytest.fixture
async def token(env: Env) -> str:
    return await issue_token(env.gw)


@pytest.fixture
async def signed_in(env: Env, token: str) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """A client holding a session cookie, and the CSRF token of its session."""
    async with await client_of(env) as client:
        res = await client.post("/console/login", data={"token": token}, headers={"Origin": ORIGIN})
        assert res.status_code == 303 and res.headers["location"] == "/console/", res.text
        page = await client.get("/console/users")
        match = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert match is not None
        yield client, match.group(1)
