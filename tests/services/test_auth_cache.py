"""The key cache under concurrency: one query per key however many requests miss together, and a
busy key reloaded ahead of its expiry instead of every request waiting on a reload when it
lapses."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from kling_gateway.crypto import SecretBox
from kling_gateway.errors import AuthError
from kling_gateway.services.auth import Authenticator, new_sk
from kling_gateway.storage.accounts import AccountStore, KeyRecord
from kling_gateway.storage.db import make_engine, upgrade

TTL = 5.0
Rig = tuple["CountingStore", Authenticator, "Clock", str, int]


class CountingStore(AccountStore):
    """The real store, counting hash lookups; ``gate`` (when set) holds each lookup's answer (read
    already) until opened."""

    lookups = 0
    gate: asyncio.Event | None = None
    fail = False

    async def key_by_hash(self, key_hash: str) -> KeyRecord | None:
        self.lookups += 1
        if self.fail:
            raise OSError("database unreachable")
        record = await super().key_by_hash(key_hash)
        if self.gate is not None:
            await self.gate.wait()
        return record


class Clock:
    now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/t.db")
    await upgrade(engine)
    store = CountingStore(engine)
    user = await store.create_user("alice", 0)
    key, prefix, digest = new_sk()
    key_id = await store.add_key(
        user_id=user.id, name="k", kind="sk", prefix=prefix, now_ms=0, key_hash=digest
    )
    clock = Clock()
    auth = Authenticator(store, SecretBox(Fernet.generate_key()), clock, ttl=TTL, leeway=10)
    try:
        yield store, auth, clock, f"Bearer {key}", key_id
    finally:
        await engine.dispose()


async def test_concurrent_misses_share_one_lookup(rig: Rig) -> None:
    store, auth, clock, header, key_id = rig
    store.gate = asyncio.Event()
    callers = [asyncio.create_task(auth.authenticate(header)) for _ in range(20)]
    await asyncio.sleep(0.01)
    store.gate.set()
    assert {p.key.id for p in await asyncio.gather(*callers)} == {key_id}
    assert store.lookups == 1
    clock.now += TTL  # lapsed with nobody using it: the next twenty miss together, again one lookup
    assert len({(await p).key.id for p in [auth.authenticate(header) for _ in range(20)]}) == 1
    assert store.lookups == 2


async def test_a_busy_key_is_reloaded_ahead_without_anyone_waiting(
    rig: Rig,
) -> None:
    store, auth, clock, header, key_id = rig
    await auth.authenticate(header)
    clock.now += TTL * 0.5
    await auth.authenticate(header)
    assert store.lookups == 1  # mid-life: a dict read
    clock.now += TTL * 0.4  # in the last fifth of its life
    store.gate = asyncio.Event()  # the reload cannot finish: callers are still answered at once
    for _ in range(10):
        assert (await asyncio.wait_for(auth.authenticate(header), 1)).key.id == key_id
    assert store.lookups == 2  # ten hits started one reload
    store.gate.set()
    await asyncio.sleep(0.01)
    assert store.lookups == 2
    store.gate = None
    await store.set_key_disabled(key_id, True)
    clock.now += (
        TTL * 0.1
    )  # the first entry's end: the reloaded one (fresh from its start) is served
    assert (await auth.authenticate(header)).key.id == key_id
    assert store.lookups == 2
    clock.now += TTL * 0.8  # the reload's own last fifth: reloaded again, now seeing it disabled
    await auth.authenticate(header)
    await asyncio.sleep(0.01)
    with pytest.raises(AuthError):
        await auth.authenticate(header)


async def test_nothing_is_served_past_its_ttl_while_a_reload_hangs(
    rig: Rig,
) -> None:
    store, auth, clock, header, _ = rig
    await auth.authenticate(header)
    clock.now += TTL * 0.9
    store.gate = asyncio.Event()
    await auth.authenticate(header)  # starts the reload, which hangs
    clock.now += TTL * 0.1  # the old entry has expired: callers now wait for that same reload
    waiter = asyncio.create_task(auth.authenticate(header))
    await asyncio.sleep(0.01)
    assert not waiter.done() and store.lookups == 2
    store.gate.set()
    await waiter
    assert store.lookups == 2


async def test_a_failed_background_reload_is_logged_and_the_entry_lapses(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    store, auth, clock, header, key_id = rig
    await auth.authenticate(header)
    clock.now += TTL * 0.9
    store.fail = True
    assert (await auth.authenticate(header)).key.id == key_id  # still valid: served
    await asyncio.sleep(0.01)
    assert "key lookup failed: database unreachable" in caplog.text
    clock.now += TTL * 0.1
    with pytest.raises(OSError):  # expired, and the store still fails: the caller hears of it
        await auth.authenticate(header)
    store.fail = False
    assert (await auth.authenticate(header)).key.id == key_id


async def test_forget_during_a_load_does_not_refill_the_cache(
    rig: Rig,
) -> None:
    store, auth, _, header, key_id = rig
    store.gate = asyncio.Event()
    first = asyncio.create_task(auth.authenticate(header))
    await asyncio.sleep(0.01)  # the lookup has read the enabled record and is on its way back
    await store.set_key_disabled(key_id, True)
    auth.forget()  # the key was revoked here while its lookup was in flight
    store.gate.set()
    await first  # that caller asked before the revocation
    store.gate = None
    with pytest.raises(AuthError):  # the next one must not get the pre-revocation record
        await auth.authenticate(header)
    assert store.lookups == 2


async def test_a_caller_giving_up_does_not_cancel_the_shared_load(
    rig: Rig,
) -> None:
    store, auth, _, header, key_id = rig
    store.gate = asyncio.Event()
    quitter = asyncio.create_task(auth.authenticate(header))
    stayer = asyncio.create_task(auth.authenticate(header))
    await asyncio.sleep(0.01)
    quitter.cancel()
    store.gate.set()
    assert (await stayer).key.id == key_id
    assert store.lookups == 1
