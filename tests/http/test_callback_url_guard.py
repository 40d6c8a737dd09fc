"""Clearly bad callback URLs are refused at submit (400/1201) before anything is stored or sent."""

from __future__ import annotations

import pytest

from tests.conftest import Env

BODY = {"model_name": "kling-v1", "prompt": "x"}


@pytest.mark.parametrize(
    "url",
    [
        "ftp://hooks.example.com/x",
        "http://10.0.0.5/hook",
        "http://192.168.1.1/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/hook",
        "http://[fd00:ec2::254]/hook",
        "http://localhost/hook",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://user:pass@hooks.example.com/x",
        "http://167772161/",  # 10.0.0.1 spelled as one number
        "http://0.0.0.0/",
    ],
)
async def test_refused_at_submit(env: Env, url: str) -> None:
    resp = await env.create({**BODY, "callback_url": url})
    assert resp.status_code == 400, resp.text
    body = resp.json()
    assert body["code"] == 1201 and "callback_url" in body["message"]
    assert env.sim.tasks_created() == 0
    assert await env.gw.tasks.list_all(10) == []


@pytest.mark.parametrize(
    "url", ["https://hooks.example.com/kling", "http://127.0.0.1:9/allow-listed-in-tests"]
)
async def test_accepted_at_submit(env: Env, url: str) -> None:
    assert (await env.create({**BODY, "callback_url": url})).status_code == 200
