"""Operator use cases (services.admin) on a real Gateway over a temp SQLite DB and a hand-driven
clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from kling_gateway.domain.task import TaskStatus
from kling_gateway.services import admin
from kling_gateway.services.auth import hash_key
from kling_gateway.services.gateway import Gateway, build_gateway
from kling_gateway.storage.tasks import TaskRecord
from kling_gateway.upstream.simulator import ManualClock
from tests.conftest import make_settings


@pytest.fixture
async def gw(tmp_path: Path, clock: ManualClock) -> AsyncIterator[Gateway]:
    gateway = await build_gateway(make_settings(tmp_path), clock=clock)
    try:
        yield gateway
    finally:
        await gateway.aclose()


def task_for(gw: Gateway, user_id: int, **overrides: Any) -> TaskRecord:
    now = gw.now_ms()
    values: dict[str, Any] = {
        "id": gw.ids.mint(now),
        "user_id": user_id,
        "key_id": None,
        "public_model": "kling-v2-6",
        "upstream_model": "kling-v2-6",
        "status": TaskStatus.SUBMITTED.value,
        "status_msg": "",
        "external_task_id": None,
        "request_hash": "0" * 64,
        "request_json": "{}",
        "callback_url": None,
        "mode": "std",
        "duration": 5,
        "sound": False,
        "watermark": False,
        "upstream_account_id": None,
        "upstream_task_id": None,
        "result_json": None,
        "unit_deduction": None,
        "created_at": now,
        "updated_at": now,
        "next_poll_at": None,
        "poll_attempts": 0,
    }
    values.update(overrides)
    return TaskRecord(**values)


# ----------------------------------------------------------------------------------------------
# users
async def test_create_user(gw: Gateway) -> None:
    user = await admin.create_user(gw, "alice")
    assert user.name == "alice" and user.disabled is False and user.created_at == gw.now_ms()
    assert [u.name for u in await gw.accounts.list_users()] == ["alice"]


@pytest.mark.parametrize("name", ["", "x" * 65])
async def test_create_user_refuses_bad_names(gw: Gateway, name: str) -> None:
    with pytest.raises(admin.AdminError, match="1–64"):
        await admin.create_user(gw, name)
    assert await gw.accounts.list_users() == []


async def test_create_user_accepts_64_characters(gw: Gateway) -> None:
    user = await admin.create_user(gw, "n" * 64)
    assert await gw.accounts.get_user("n" * 64) == user


async def test_duplicate_user_is_an_admin_error(gw: Gateway) -> None:
    await admin.create_user(gw, "alice")
    with pytest.raises(admin.AdminError, match="already exists"):
        await admin.create_user(gw, "alice")
    assert len(await gw.accounts.list_users()) == 1


# -----------------------------------------------------------------------------------------------
# keys
async def test_create_sk_key_stores_only_the_hash(gw: Gateway) -> None:
    await admin.create_user(gw, "alice")
    issued = await admin.create_key(gw, "alice", name="ci")
    assert issued.api_key is not None and issued.api_key.startswith("sk-")
    assert issued.access_key is None and issued.secret_key is None
    assert issued.api_key.startswith(issued.prefix) and issued.prefix != issued.api_key
    record = await gw.accounts.key_by_hash(hash_key(issued.api_key))
    assert (
        record is not None
        and record.id == issued.id
        and record.name == "ci"
        and record.kind == "sk"
    )
    assert record.expires_at is None and record.allowed_models is None
    principal = await gw.auth.authenticate(f"Bearer {issued.api_key}")
    assert principal.user_id == record.user_id


async def test_create_aksk_key_stores_the_secret_encrypted(gw: Gateway) -> None:
    await admin.create_user(gw, "alice")
    issued = await admin.create_key(gw, "alice", aksk=True)
    assert issued.api_key is None
    assert issued.access_key and issued.secret_key and issued.prefix == issued.access_key
    record = await gw.accounts.key_by_access_key(issued.access_key)
    assert record is not None and record.kind == "aksk"
    assert record.secret_enc is not None and issued.secret_key not in record.secret_enc
    assert gw.box.decrypt(record.secret_enc) == issued.secret_key


async def test_create_key_with_models_and_expiry(gw: Gateway) -> None:
    await admin.create_user(gw, "alice")
    issued = await admin.create_key(gw, "alice", models=["kling-v3", "kling-v1"], expires_days=2)
    [record] = await admin.list_keys(gw, "alice")
    assert record.id == issued.id
    assert record.allowed_models == frozenset({"kling-v3", "kling-v1"})
    assert record.expires_at == gw.now_ms() + 2 * 86_400_000


async def test_create_key_accepts_a_mapped_public_name(gw: Gateway) -> None:
    await admin.create_user(gw, "alice")
    await admin.map_model(gw, "fast", "kling-v2-5-turbo")
    issued = await admin.create_key(gw, "alice", models=["fast"])
    [record] = await admin.list_keys(gw)
    assert record.id == issued.id and record.allowed_models == frozenset({"fast"})


async def test_create_key_refuses_unknown_model_and_stores_nothing(gw: Gateway) -> None:
    await admin.create_user(gw, "alice")
    with pytest.raises(admin.AdminError, match="kling-v9"):
        await admin.create_key(gw, "alice", models=["kling-v3", "kling-v9"])
    assert await admin.list_keys(gw) == []


async def test_create_key_for_unknown_user(gw: Gateway) -> None:
    with pytest.raises(admin.AdminError, match="no user named 'ghost'"):
        await admin.create_key(gw, "ghost")
    with pytest.raises(admin.AdminError, match="ghost"):
        await admin.list_keys(gw, "ghost")


async def test_list_keys_per_user(gw: Gateway) -> None:
    await admin.create_user(gw, "alice")
    await admin.create_user(gw, "bob")
    a = await admin.create_key(gw, "alice")
    b = await admin.create_key(gw, "bob", aksk=True)
    assert [k.id for k in await admin.list_keys(gw)] == [a.id, b.id]
    assert [k.id for k in await admin.list_keys(gw, "bob")] == [b.id]


async def test_revoke_key(gw: Gateway) -> None:
    await admin.create_user(gw, "alice")
    issued = await admin.create_key(gw, "alice")
    assert issued.api_key is not None
    await admin.revoke_key(gw, issued.id)
    [record] = await admin.list_keys(gw)
    assert record.disabled is True
    with pytest.raises(admin.AdminError, match=f"no key with id {issued.id + 1}"):
        await admin.revoke_key(gw, issued.id + 1)


# ------------------------------------------------------------------------------------------
# bootstrap
async def test_bootstrap_on_empty_db_creates_one_user_and_key(gw: Gateway) -> None:
    issued = await admin.bootstrap(gw)
    assert issued is not None and issued.user == admin.BOOTSTRAP_USER
    assert issued.api_key is not None and issued.api_key.startswith("sk-")
    assert [u.name for u in await gw.accounts.list_users()] == [admin.BOOTSTRAP_USER]
    [key] = await admin.list_keys(gw)
    assert key.id == issued.id and key.name == "bootstrap"

    assert await admin.bootstrap(gw) is None  # second start: nothing new
    assert len(await gw.accounts.list_users()) == 1
    assert len(await admin.list_keys(gw)) == 1


async def test_bootstrap_does_nothing_when_a_user_exists(gw: Gateway) -> None:
    await admin.create_user(gw, "alice")
    assert await admin.bootstrap(gw) is None
    assert [u.name for u in await gw.accounts.list_users()] == ["alice"]
    assert await admin.list_keys(gw) == []


# ---------------------------------------------------------------------------------------------
# models
async def test_list_models_includes_the_table(gw: Gateway) -> None:
    rows = await admin.list_models(gw)
    assert ("kling-v3", "kling-v3", "kling-v3") in rows
    assert ("kling-v1", "kling-v1", "kling-v1") in rows


async def test_map_model_stores_and_resolves(gw: Gateway) -> None:
    assert await admin.map_model(gw, "my-fast", "kling-v2-5-turbo") == "kling-v2-5-turbo"
    assert await admin.map_model(gw, "my-alias", "my-fast") == "kling-v2-5-turbo"
    assert await gw.upstreams.routes() == {"my-fast": "kling-v2-5-turbo", "my-alias": "my-fast"}
    resolved = gw.catalog.resolve("my-alias")
    assert resolved is not None and resolved[0] == "kling-v2-5-turbo"
    assert ("my-alias", "my-fast", "kling-v2-5-turbo") in await admin.list_models(gw)


async def test_map_model_refuses_a_cycle_and_stores_nothing(gw: Gateway) -> None:
    await admin.map_model(gw, "a", "kling-v2-6")
    await admin.map_model(gw, "b", "a")
    before_routes = await gw.upstreams.routes()
    with pytest.raises(admin.AdminError, match="cycle"):
        await admin.map_model(gw, "a", "b")
    assert await gw.upstreams.routes() == before_routes == {"a": "kling-v2-6", "b": "a"}
    resolved = gw.catalog.resolve("a")
    assert resolved is not None and resolved[0] == "kling-v2-6"


async def test_map_model_refuses_a_longer_cycle(gw: Gateway) -> None:
    await admin.map_model(gw, "a", "kling-v1")
    await admin.map_model(gw, "b", "a")
    await admin.map_model(gw, "c", "b")
    with pytest.raises(admin.AdminError, match="cycle"):
        await admin.map_model(gw, "a", "c")
    assert await gw.upstreams.routes() == {"a": "kling-v1", "b": "a", "c": "b"}


async def test_map_model_to_itself_is_a_dead_end_unless_in_the_table(gw: Gateway) -> None:
    with pytest.raises(admin.AdminError):
        await admin.map_model(gw, "loop", "loop")
    assert await gw.upstreams.routes() == {}
    assert await admin.map_model(gw, "kling-v3", "kling-v3") == "kling-v3"


@pytest.mark.parametrize("target", ["kling-v9", "b"])
async def test_map_model_refuses_a_dead_end(gw: Gateway, target: str) -> None:
    with pytest.raises(admin.AdminError, match="not in the capability table"):
        await admin.map_model(gw, "x", target)
    assert await gw.upstreams.routes() == {}
    assert gw.catalog.resolve("x") is None


async def test_unmap_model(gw: Gateway) -> None:
    await admin.map_model(gw, "my-fast", "kling-v2-5-turbo")
    await admin.unmap_model(gw, "my-fast")
    assert await gw.upstreams.routes() == {}
    assert gw.catalog.resolve("my-fast") is None
    with pytest.raises(admin.AdminError, match="has no route"):
        await admin.unmap_model(gw, "my-fast")


async def test_unmap_refuses_to_strand_an_alias(gw: Gateway) -> None:
    await admin.map_model(gw, "a", "kling-v3")
    await admin.map_model(gw, "b", "a")
    with pytest.raises(admin.AdminError, match="cannot remove 'a'"):
        await admin.unmap_model(gw, "a")
    assert await gw.upstreams.routes() == {"a": "kling-v3", "b": "a"}
    resolved = gw.catalog.resolve("b")
    assert resolved is not None and resolved[0] == "kling-v3"


# ----------------------------------------------------------------------------------------------
# tasks
async def test_list_and_show_tasks(gw: Gateway, clock: ManualClock) -> None:
    alice = await admin.create_user(gw, "alice")
    bob = await admin.create_user(gw, "bob")
    t1 = task_for(gw, alice.id)
    await gw.tasks.insert(t1)
    clock.advance(1)
    t2 = task_for(gw, bob.id, status=TaskStatus.SUCCEED.value, external_task_id="b-1")
    await gw.tasks.insert(t2)
    clock.advance(1)
    t3 = task_for(gw, alice.id, status=TaskStatus.REJECTED.value)
    await gw.tasks.insert(t3)

    assert [t.id for t in await admin.list_tasks(gw)] == [t3.id, t2.id, t1.id]
    assert [t.id for t in await admin.list_tasks(gw, limit=2)] == [t3.id, t2.id]
    assert [t.id for t in await admin.list_tasks(gw, user_name="alice")] == [t3.id, t1.id]
    assert [t.id for t in await admin.list_tasks(gw, status="succeed")] == [t2.id]
    assert [t.id for t in await admin.list_tasks(gw, status="rejected", user_name="bob")] == []
    with pytest.raises(admin.AdminError, match="no user named 'ghost'"):
        await admin.list_tasks(gw, user_name="ghost")

    assert await admin.show_task(gw, t2.id) == t2
    assert await admin.show_task(gw, t3.id) == t3  # the operator sees rejected rows too
    with pytest.raises(admin.AdminError, match="no task '123'"):
        await admin.show_task(gw, "123")
