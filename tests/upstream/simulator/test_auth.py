"""Auth codes 1001–1004 and API keys (kling-api.md §2)."""

from __future__ import annotations

import pytest

from .conftest import AK, SK, Harness, make_token, raw_jwt


def _assert_error(response: object, status: int, code: int) -> None:
    import httpx

    assert isinstance(response, httpx.Response)
    assert response.status_code == status
    body = response.json()
    assert body["code"] == code
    assert body["request_id"]
    assert body["message"]


async def test_missing_header_is_1001(harness: Harness) -> None:
    response = await harness.client.post("/v1/videos/text2video", json={"prompt": "x"})
    _assert_error(response, 401, 1001)


@pytest.mark.parametrize(
    "value",
    ["Bearer", "Basic abc", "Bearer not-a-jwt", "Bearer a.b.c", "bearer x.y.z"],
)
async def test_malformed_is_1002(harness: Harness, value: str) -> None:
    _assert_error(await harness.create(Authorization=value), 401, 1002)


async def test_wrong_secret_unknown_key_and_alg_are_1002(harness: Harness) -> None:
    clock = harness.clock
    for token in (
        make_token(clock, AK, "wrong-secret"),
        make_token(clock, "unknown-ak", SK),
        raw_jwt({"alg": "none"}, {"iss": AK, "exp": int(clock()) + 60}, SK),
        raw_jwt({"alg": "HS256"}, {"iss": AK}, SK),  # exp is required
        raw_jwt({"alg": "HS256"}, {"iss": AK, "exp": "soon"}, SK),
    ):
        _assert_error(await harness.create(Authorization=f"Bearer {token}"), 401, 1002)


async def test_nbf_in_future_is_1003_and_expired_is_1004(harness: Harness) -> None:
    early = make_token(harness.clock, nbf_in=60)
    _assert_error(await harness.create(Authorization=f"Bearer {early}"), 401, 1003)
    late = make_token(harness.clock, exp_in=-60)
    _assert_error(await harness.create(Authorization=f"Bearer {late}"), 401, 1004)


async def test_expiry_follows_the_simulator_clock_with_leeway(harness: Harness) -> None:
    token = make_token(harness.clock, exp_in=10)
    headers = {"Authorization": f"Bearer {token}"}
    assert (await harness.get("/v1/videos/text2video", **headers)).status_code == 200
    harness.clock.advance(14)  # within the 5 s leeway
    assert (await harness.get("/v1/videos/text2video", **headers)).status_code == 200
    harness.clock.advance(2)
    _assert_error(await harness.get("/v1/videos/text2video", **headers), 401, 1004)


async def test_header_without_typ_is_accepted(harness: Harness) -> None:
    now = int(harness.clock())
    token = raw_jwt({"alg": "HS256"}, {"iss": AK, "exp": now + 1800, "nbf": now - 5}, SK)
    response = await harness.create(Authorization=f"Bearer {token}")
    assert response.status_code == 200, response.text


async def test_revoking_a_key_at_runtime_invalidates_cached_tokens(harness: Harness) -> None:
    headers = harness.auth()
    assert (await harness.get("/v1/videos/text2video", **headers)).status_code == 200
    harness.sim.config.access_keys[AK] = "rotated"
    _assert_error(await harness.get("/v1/videos/text2video", **headers), 401, 1002)


async def test_api_key_and_shared_account(harness: Harness) -> None:
    config = harness.sim.config
    config.api_keys.add("sim-api-key")
    config.account_of["sim-api-key"] = AK
    response = await harness.create(
        {"prompt": "p", "external_task_id": "shared-1"}, Authorization="Bearer sim-api-key"
    )
    assert response.status_code == 200
    # The JWT credential belongs to the same account, so it sees the task by external id.
    found = await harness.get("/v1/videos/text2video/shared-1")
    assert found.json()["data"]["task_id"] == response.json()["data"]["task_id"]
    _assert_error(await harness.create(Authorization="Bearer other-api-key"), 401, 1002)


async def test_separate_accounts_do_not_see_each_other(harness: Harness) -> None:
    harness.sim.config.access_keys["ak-2"] = "sk-2"
    created = await harness.create({"prompt": "p", "external_task_id": "mine"})
    task_id = created.json()["data"]["task_id"]
    other = harness.auth("ak-2", "sk-2")
    assert (await harness.get(f"/v1/videos/text2video/{task_id}", **other)).status_code == 404
    assert (await harness.get("/v1/videos/text2video", **other)).json()["data"] == []
    # external ids are unique per account only
    assert (
        await harness.create({"prompt": "p", "external_task_id": "mine"}, **other)
    ).status_code == 200
    assert harness.sim.tasks_created(AK) == 1
    assert harness.sim.tasks_created("ak-2") == 1
    assert harness.sim.external_id_count("mine") == 2
    assert harness.sim.external_id_count("mine", account=AK) == 1
