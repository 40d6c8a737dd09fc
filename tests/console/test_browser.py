"""The console in Debian's Chromium: sign-in, users and keys, a task watched to ``succeed`` and its
video played, money, channels, and the browser-side defences (cookie flags, forged cross-origin
posts, escaping). Screenshots of every page go to $KGW_CONSOLE_SCREENSHOTS (docs/img when
regenerating the docs)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import httpx
from playwright.sync_api import BrowserContext, Page, expect

from tests.console.conftest import sign_in
from tests.console.server import Served

XSS = "<script>alert('xss')</script>"


def _shot(page: Page, name: str) -> None:
    target = os.environ.get("KGW_CONSOLE_SCREENSHOTS")
    if target:
        page.screenshot(path=str(Path(target) / f"console-{name}.png"), full_page=True)


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def test_wrong_token_is_refused_and_the_right_one_signs_in(page: Page, served: Served) -> None:
    page.goto(f"{served.base_url}/console/tasks")
    expect(page).to_have_url(f"{served.base_url}/console/login")
    _shot(page, "login")
    page.fill("#token", "kgw-op-not-the-token")
    page.click("button[type=submit]")
    expect(page.locator("#error-token")).to_contain_text("not the operator token")
    sign_in(page, served)
    expect(page.locator("h1")).to_contain_text("Overview")
    page.click("#sign-out")
    expect(page).to_have_url(f"{served.base_url}/console/login")
    page.goto(f"{served.base_url}/console/")
    expect(page).to_have_url(f"{served.base_url}/console/login")


def test_session_cookie_is_strict_and_hidden_from_scripts(
    page: Page, context: BrowserContext, served: Served
) -> None:
    sign_in(page, served)
    (cookie,) = [c for c in context.cookies() if c["name"] == "kgw_console"]
    assert (
        cookie["httpOnly"] is True
        and cookie["sameSite"] == "Strict"
        and cookie["path"] == "/console"
    )
    assert "kgw_console" not in page.evaluate("document.cookie")


def test_user_key_task_video_and_escaping(page: Page, served: Served) -> None:
    sign_in(page, served)
    page.goto(f"{served.base_url}/console/users")
    name = _unique("<b>carol</b>")
    page.fill("#user-name", name)
    page.click("#create-user button[type=submit]")
    row = page.locator("#users tr", has_text=name)
    expect(row).to_have_count(1)  # the name shows as text: escaped, not markup
    assert page.locator("#users b").count() == 0

    page.fill("#user-name", "")
    page.click("#create-user button[type=submit]")
    expect(page.locator("#error-name")).to_contain_text("1–64")

    page.locator("#users a", has_text=name).click()
    page.fill("#max_in_flight", "many")
    page.click("#user-settings button[type=submit]")
    expect(page.locator("#error-max_in_flight")).to_contain_text("must be an integer")
    page.fill("#max_in_flight", "4")
    page.click("#user-settings button[type=submit]")
    expect(page.locator("#max_in_flight")).to_have_value("4")
    _shot(page, "user")
    page.goto(f"{served.base_url}/console/users")

    page.select_option("#key-user", name)
    page.fill("#key-name", "browser")
    page.click("#issue-key button[type=submit]")
    key = page.locator("#new-api-key").inner_text()
    assert key.startswith("sk-")
    _shot(page, "users")
    page.goto(f"{served.base_url}/console/users")
    assert key not in page.content()  # shown once only

    page.goto(f"{served.base_url}/console/money")
    page.select_option("#money-user", name)
    page.fill("#amount", "50")
    page.fill("#note", "browser test")
    page.click("#adjust button[type=submit]")
    expect(page.locator("#balance")).to_have_text("50")

    res = httpx.post(
        f"{served.base_url}/kling/v1/videos/text2video",
        headers={"Authorization": f"Bearer {key}"},
        json={"model_name": "kling-v2-6", "prompt": XSS, "duration": "5"},
    )
    assert res.status_code == 200, res.text
    task_id = res.json()["data"]["task_id"]

    page.goto(f"{served.base_url}/console/tasks?user={name}")
    cell = page.locator(f"tr[data-task='{task_id}'] td.status")
    expect(cell).to_have_text("succeed", timeout=30_000)  # htmx refreshes the table every 3 s
    expect(page.locator(f"tr[data-task='{task_id}'] td.prompt")).to_contain_text(XSS)
    _shot(page, "tasks")

    page.click(f"a[href='/console/tasks/{task_id}']")
    expect(page.locator("#task-status")).to_have_text("succeed")
    expect(page.locator("#request-body")).to_contain_text("alert('xss')")
    page.wait_for_function(
        "document.getElementById('video-0') && document.getElementById('video-0').readyState >= 2",
        timeout=20_000,
    )
    _shot(page, "task")
    assert page.dialogs == []  # type: ignore[attr-defined]

    page.goto(f"{served.base_url}/console/money?user={name}")
    expect(page.locator("#statement")).to_contain_text("browser test")
    _shot(page, "money")


def test_channel_added_without_echoing_secrets_then_disabled(page: Page, served: Served) -> None:
    sign_in(page, served)
    page.goto(f"{served.base_url}/console/channels")
    name = _unique("spare")
    page.fill("#ch-name", name)
    page.fill("#ch-url", "ftp://nowhere")
    page.fill("#ch-ak", "ak-browser-0001")
    page.fill("#ch-sk", "sk-browser-very-secret")
    page.click("#add-channel button[type=submit]")
    expect(page.locator("#error-base_url")).to_be_visible()
    assert "sk-browser-very-secret" not in page.content()

    page.fill("#ch-url", "http://127.0.0.1:9")
    page.fill("#ch-ak", "ak-browser-0001")
    page.fill("#ch-sk", "sk-browser-very-secret")
    page.click("#add-channel button[type=submit]")
    row = page.locator(f"tr[data-channel='{name}']")
    expect(row).to_have_count(1)
    assert "sk-browser-very-secret" not in page.content()
    row.get_by_role("button", name="Disable").click()
    expect(page.locator(f"tr[data-channel='{name}'] td.state")).to_contain_text("disabled")
    row.locator("input[name=weight]").fill("heavy")
    row.get_by_role("button", name="Save").click()
    expect(page.locator("#error-weight")).to_contain_text("weight: must be an integer")
    _shot(page, "channels")


def test_overview_and_prices_render(page: Page, served: Served) -> None:
    sign_in(page, served)
    page.wait_for_selector("#chart .uplot")  # the chart drew: static JS ran under the CSP
    _shot(page, "overview")
    page.goto(f"{served.base_url}/console/prices")
    page.fill("#p-model", "kling-v2-6")
    page.fill("#p-credits", "not-a-number")
    page.click("#set-price button[type=submit]")
    expect(page.locator("#error-credits_per_second")).to_be_visible()
    _shot(page, "prices")


def test_forged_cross_origin_post_does_nothing(page: Page, served: Served) -> None:
    sign_in(page, served)
    victim = _unique("forged")
    evil = (
        "<html><body><form id=f method=post action='" + served.base_url + "/console/users'>"
        f"<input name=name value='{victim}'></form>"
        "<script>document.getElementById('f').submit()</script></body></html>"
    )
    page.route(
        "http://evil.example/", lambda route: route.fulfill(body=evil, content_type="text/html")
    )
    page.goto("http://evil.example/")
    page.wait_for_load_state()
    # SameSite=Strict: the cookie did not go along, so the console answered with its sign-in page.
    expect(page).to_have_url(f"{served.base_url}/console/login")
    page.goto(f"{served.base_url}/console/users")  # the session itself is still signed in
    expect(page.locator("#users")).to_be_visible()
    assert victim not in page.content()
