"""AccountStore (users and keys) against a real schema, on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from kling_gateway.storage.accounts import AccountStore, AlreadyExists

T0 = 1_770_000_000_000


@pytest.fixture
def store(engine: AsyncEngine) -> AccountStore:
    return AccountStore(engine)


async def test_users_create_get_list(store: AccountStore) -> None:
    alice = await store.create_user("alice", T0)
    bob = await store.create_user("bob", T0 + 1)
    assert alice.id != bob.id
    assert (alice.name, alice.disabled, alice.created_at) == ("alice", False, T0)
    assert await store.get_user("alice") == alice
    assert await store.get_user("carol") is None
    assert [u.name for u in await store.list_users()] == ["alice", "bob"]


async def test_duplicate_user_raises_already_exists(store: AccountStore) -> None:
    await store.create_user("alice", T0)
    with pytest.raises(AlreadyExists, match="alice"):
        await store.create_user("alice", T0 + 1)
    assert [u.name for u in await store.list_users()] == ["alice"]


async def test_set_user_disabled(store: AccountStore) -> None:
    await store.create_user("alice", T0)
    assert await store.set_user_disabled("alice", True)
    user = await store.get_user("alice")
    assert user is not None and user.disabled is True
    assert not await store.set_user_disabled("nobody", True)


async def test_key_by_hash_round_trip(store: AccountStore) -> None:
    alice = await store.create_user("alice", T0)
    key_id = await store.add_key(
        user_id=alice.id, name="ci", kind="sk", prefix="sk-abcdefgh", now_ms=T0, key_hash="a" * 64
    )
    key = await store.key_by_hash("a" * 64)
    assert key is not None
    assert (key.id, key.user_id, key.user_name, key.name, key.kind, key.prefix) == (
        key_id,
        alice.id,
        "alice",
        "ci",
        "sk",
        "sk-abcdefgh",
    )
    assert key.allowed_models is None and key.expires_at is None
    assert key.access_key is None and key.secret_enc is None
    assert key.disabled is False and key.created_at == T0
    assert await store.key_by_hash("b" * 64) is None
    assert await store.key_by_access_key("sk-abcdefgh") is None


async def test_key_by_access_key_round_trip(store: AccountStore) -> None:
    alice = await store.create_user("alice", T0)
    key_id = await store.add_key(
        user_id=alice.id,
        name="",
        kind="aksk",
        prefix="ak-123",
        now_ms=T0,
        access_key="ak-123",
        secret_enc="ciphertext",
        expires_at=T0 + 86_400_000,
    )
    key = await store.key_by_access_key("ak-123")
    assert key is not None and key.id == key_id
    assert (key.kind, key.access_key, key.secret_enc, key.expires_at) == (
        "aksk",
        "ak-123",
        "ciphertext",
        T0 + 86_400_000,
    )
    assert await store.key_by_access_key("ak-999") is None


async def test_allowed_models_round_trip(store: AccountStore) -> None:
    alice = await store.create_user("alice", T0)
    await store.add_key(
        user_id=alice.id,
        name="",
        kind="sk",
        prefix="sk-x",
        now_ms=T0,
        key_hash="c" * 64,
        allowed_models=["kling-v3", "kling-v1", "kling-v3"],
    )
    key = await store.key_by_hash("c" * 64)
    assert key is not None and key.allowed_models == frozenset({"kling-v1", "kling-v3"})
    [listed] = await store.list_keys(alice.id)
    assert listed.allowed_models == frozenset({"kling-v1", "kling-v3"})


async def test_user_disabled_flag_is_joined_into_keys(store: AccountStore) -> None:
    alice = await store.create_user("alice", T0)
    await store.add_key(
        user_id=alice.id, name="", kind="sk", prefix="sk-1", now_ms=T0, key_hash="d" * 64
    )
    await store.add_key(
        user_id=alice.id,
        name="",
        kind="aksk",
        prefix="ak-1",
        now_ms=T0,
        access_key="ak-1",
        secret_enc="s",
    )
    await store.set_user_disabled("alice", True)
    by_hash = await store.key_by_hash("d" * 64)
    by_ak = await store.key_by_access_key("ak-1")
    assert by_hash is not None and by_hash.disabled is True
    assert by_ak is not None and by_ak.disabled is True
    await store.set_user_disabled("alice", False)
    by_hash = await store.key_by_hash("d" * 64)
    assert by_hash is not None and by_hash.disabled is False


async def test_set_key_disabled(store: AccountStore) -> None:
    alice = await store.create_user("alice", T0)
    k1 = await store.add_key(
        user_id=alice.id, name="", kind="sk", prefix="sk-1", now_ms=T0, key_hash="e" * 64
    )
    k2 = await store.add_key(
        user_id=alice.id, name="", kind="sk", prefix="sk-2", now_ms=T0, key_hash="f" * 64
    )
    assert await store.set_key_disabled(k1, True)
    one = await store.key_by_hash("e" * 64)
    two = await store.key_by_hash("f" * 64)
    assert one is not None and one.disabled is True
    assert two is not None and two.disabled is False  # only that key
    assert await store.set_key_disabled(k1, False)
    one = await store.key_by_hash("e" * 64)
    assert one is not None and one.disabled is False
    assert not await store.set_key_disabled(k2 + 1000, True)


async def test_list_keys_all_and_per_user(store: AccountStore) -> None:
    alice = await store.create_user("alice", T0)
    bob = await store.create_user("bob", T0)
    a = await store.add_key(
        user_id=alice.id, name="", kind="sk", prefix="sk-a", now_ms=T0, key_hash="1" * 64
    )
    b = await store.add_key(
        user_id=bob.id, name="", kind="sk", prefix="sk-b", now_ms=T0, key_hash="2" * 64
    )
    a2 = await store.add_key(
        user_id=alice.id, name="", kind="sk", prefix="sk-c", now_ms=T0, key_hash="3" * 64
    )
    assert [k.id for k in await store.list_keys()] == [a, b, a2]
    assert [k.id for k in await store.list_keys(alice.id)] == [a, a2]
    assert [(k.id, k.user_name) for k in await store.list_keys(bob.id)] == [(b, "bob")]


async def test_key_hash_and_access_key_are_unique(store: AccountStore) -> None:
    alice = await store.create_user("alice", T0)
    await store.add_key(
        user_id=alice.id, name="", kind="sk", prefix="sk-a", now_ms=T0, key_hash="9" * 64
    )
    with pytest.raises(IntegrityError):
        await store.add_key(
            user_id=alice.id, name="", kind="sk", prefix="sk-a", now_ms=T0, key_hash="9" * 64
        )
    assert len(await store.list_keys()) == 1
