"""Upstream accounts as live channels: selection, key rotation, cooldowns and the figures operators
read.

A process holds one ``ChannelSet``, rebuilt from the database every few seconds (``reload``), so
accounts added, edited or disabled from the CLI or admin API on any node take effect everywhere, and
a cooldown one node records (``upstream_accounts.cooldown_until``) benches the account on every
node.

What lives only in memory, per process: the round-robin position over an account's keys, the short
"busy" marks after 1302/1303 and the short cooldown after an unreachable call (both are cheap to
rediscover), and call statistics. Reads of a task always go to the account that holds it, whatever
its state: disabling an account stops new traffic, never the tracking of tasks already there.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from ..crypto import SecretBox
from ..domain.refusals import Fault
from ..domain.routing import choose
from ..errors import ConfigError
from ..observability.metrics import Telemetry
from ..settings import Settings
from ..storage.ports import UpstreamAccounts, UpstreamLoad
from ..storage.upstreams import UpstreamAccount, UpstreamKey
from ..upstream.auth import Authorizer, Credentials
from ..upstream.client import KlingClient, Outcome, UpstreamError, UpstreamTask
from ..upstream.transport import Transport

log = logging.getLogger("kling_gateway.channels")

_EWMA = 0.2  # weight of the newest call in the latency average


def mask(secret: str) -> str:
    """What may be printed of a credential: enough to tell keys apart, never enough to use one."""
    if len(secret) <= 8:
        return "…" + secret[-2:] if len(secret) > 4 else "…"
    return f"{secret[:4]}…{secret[-4:]}"


@dataclass(slots=True)
class KeySlot:
    id: int
    hint: str
    client: KlingClient
    fingerprint: tuple[str | None, ...]
    enabled: bool = True
    cooldown_until: int = 0
    cooldown_reason: str | None = None

    def usable(self, now_ms: int) -> bool:
        return self.enabled and self.cooldown_until <= now_ms


@dataclass(slots=True)
class ChannelStats:
    """This process's calls to one account, for the operator's figures."""

    calls: int = 0
    errors: int = 0
    ewma_ms: float = 0.0
    last_error: str | None = None

    def observe(self, outcome: str, seconds: float) -> None:
        self.calls += 1
        ms = seconds * 1000
        self.ewma_ms = ms if self.calls == 1 else self.ewma_ms + _EWMA * (ms - self.ewma_ms)
        if outcome != "ok":
            self.errors += 1


@dataclass(slots=True)
class Channel:
    account: UpstreamAccount
    keys: list[KeySlot]
    owner: ChannelSet
    stats: ChannelStats = field(default_factory=ChannelStats)
    busy_until: dict[str, int] = field(default_factory=dict)  # model → ms, after 1302/1303
    local_cooldown_until: int = 0  # after an unreachable call; this process only
    local_reason: str | None = None
    _rr: int = 0

    @property
    def account_id(self) -> int:
        return self.account.id

    @property
    def name(self) -> str:
        return self.account.name

    @property
    def priority(self) -> int:
        return self.account.priority

    @property
    def weight(self) -> int:
        return self.account.weight

    def offers(self, model: str) -> bool:
        return self.account.models is None or model in self.account.models

    def mapped(self, model: str) -> str:
        return (self.account.model_map or {}).get(model, model)

    def cap(self, model: str) -> int | None:
        caps = self.account.caps or {}
        value = caps.get(model, caps.get("*"))
        return int(value) if value is not None else None

    def unavailable(self, now_ms: int) -> str | None:
        """Why new traffic must not come here now (disabled, refused our credentials or balance, no
        usable key); ``None`` when it may."""
        acc = self.account
        if not acc.enabled:
            return "disabled"
        if acc.cooldown_until is not None and acc.cooldown_until > now_ms:
            return f"cooling down: {acc.cooldown_reason or 'refused'}"
        if not any(k.usable(now_ms) for k in self.keys):
            return "no usable key"
        return None

    def benched(self, now_ms: int, model: str | None = None) -> str | None:
        """Unreachable moments ago, or refused ``model`` with 1302/1303: other accounts are
        preferred, but this one stays a last resort (a lone account keeps serving; a transient
        failure costs the next create one call, not a refusal without trying)."""
        if self.local_cooldown_until > now_ms:
            return f"unreachable: {self.local_reason or 'no connection'}"
        if model is not None and self.busy_until.get(model, 0) > now_ms:
            return f"busy for {model} (upstream 1302/1303)"
        return None

    def _key(self) -> KeySlot:
        """Round-robin over usable keys; reads fall back to any key so tracking never stops."""
        if not self.keys:
            raise UpstreamError(Outcome.ABSENT, 1000, f"upstream account {self.name!r} has no key")
        now = self.owner.now_ms()
        n = len(self.keys)
        for i in range(n):
            slot = self.keys[(self._rr + i) % n]
            if slot.usable(now):
                self._rr = (self._rr + i + 1) % n
                return slot
        return self.keys[self._rr % n]

    async def create(self, body: dict[str, Any], external_task_id: str) -> UpstreamTask:
        model = str(body.get("model_name", ""))
        mapped = self.mapped(model)
        if mapped != model:
            body = {**body, "model_name": mapped}
        key = self._key()
        try:
            return await key.client.create(body, external_task_id)
        except UpstreamError as exc:
            await self.owner.on_error(self, key, exc, model)
            raise

    async def get(self, task_id: str) -> UpstreamTask:
        key = self._key()
        try:
            return await key.client.get(task_id)
        except UpstreamError as exc:
            await self.owner.on_error(self, key, exc, None)
            raise

    async def find_by_external_id(self, external_task_id: str) -> UpstreamTask | None:
        key = self._key()
        try:
            return await key.client.find_by_external_id(external_task_id)
        except UpstreamError as exc:
            await self.owner.on_error(self, key, exc, None)
            raise

    async def probe(self) -> None:
        """One cheap authenticated call (free, answers with the account's packs); raises on
        failure."""
        key = self._key()
        try:
            await key.client.costs()
        except UpstreamError as exc:
            await self.owner.on_error(self, key, exc, None)
            raise


class ChannelSet:
    def __init__(
        self,
        store: UpstreamAccounts,
        box: SecretBox,
        http: Transport,
        settings: Settings,
        telemetry: Telemetry,
        limits: UpstreamLoad,
        *,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self._box = box
        self._http = http
        self._settings = settings
        self._telemetry = telemetry
        self._limits = limits
        self._clock = clock
        self._rng = rng or random.Random()
        self._by_id: dict[int, Channel] = {}

    def now_ms(self) -> int:
        return int(self._clock() * 1000)

    def all(self) -> list[Channel]:
        return list(self._by_id.values())

    async def reload(self) -> None:
        """Rebuild from the database, keeping each key's client (its JWT cache) and each account's
        in-memory marks and figures when the stored credentials did not change."""
        fresh: dict[int, Channel] = {}
        for acc in await self.store.accounts():
            old = self._by_id.get(acc.id)
            old_keys = {k.id: k for k in old.keys} if old is not None else {}
            keys = [self._slot(acc, k, old_keys.get(k.id)) for k in acc.keys]
            if old is None:
                fresh[acc.id] = Channel(acc, keys, self)
            else:
                old.account, old.keys = acc, keys
                fresh[acc.id] = old
        self._by_id = fresh

    def _slot(self, acc: UpstreamAccount, key: UpstreamKey, old: KeySlot | None) -> KeySlot:
        fingerprint = (key.access_key_enc, key.secret_key_enc, key.api_key_enc, acc.base_url)
        client = (
            old.client
            if old is not None and old.fingerprint == fingerprint
            else self._client(acc, key)
        )
        return KeySlot(
            key.id,
            key.hint,
            client,
            fingerprint,
            key.enabled,
            key.cooldown_until or 0,
            key.cooldown_reason,
        )

    def _client(self, acc: UpstreamAccount, key: UpstreamKey) -> KlingClient:
        def dec(v: str | None) -> str | None:
            return self._box.decrypt(v) if v else None

        acc_id = acc.id
        creds = Credentials(dec(key.access_key_enc), dec(key.secret_key_enc), dec(key.api_key_enc))
        metric = self._telemetry.upstream_observer(acc.name)

        def observe(method: str, outcome: str, seconds: float) -> None:
            metric(method, outcome, seconds)
            channel = self._by_id.get(acc_id)
            if channel is not None:
                channel.stats.observe(outcome, seconds)

        return KlingClient(
            self._http, acc.base_url, Authorizer(creds, self._clock), observer=observe
        )

    def for_task(self, account_id: int | None) -> Channel:
        """The account that holds (or may hold) a task: reads go there even when it is disabled."""
        if account_id is not None and (channel := self._by_id.get(account_id)) is not None:
            return channel
        return self.primary()

    def primary(self) -> Channel:
        now = self.now_ms()
        for channel in self._by_id.values():
            if channel.unavailable(now) is None:
                return channel
        for channel in self._by_id.values():
            if channel.account.enabled:
                return channel
        raise ConfigError("no upstream account is configured")

    async def candidates(
        self, model: str, exclude: set[int] | frozenset[int] = frozenset()
    ) -> list[Channel]:
        """Accounts that may take ``model`` now: enabled, not cooling down, with a usable key, under
        their cap; the ones unreachable or refused with 1302/1303 moments ago only when there is no
        other."""
        now = self.now_ms()
        out = []
        for channel in self._by_id.values():
            if channel.account_id in exclude or not channel.offers(model):
                continue
            if channel.unavailable(now) is not None:
                continue
            cap = channel.cap(model)
            if (
                cap is not None
                and await self._limits.upstream_in_flight(channel.account_id, model) >= cap
            ):
                continue
            out.append(channel)
        preferred = [c for c in out if c.benched(now, model) is None]
        return preferred or out

    async def pick(
        self, model: str, exclude: set[int] | frozenset[int] = frozenset()
    ) -> Channel | None:
        return choose(await self.candidates(model, exclude), self._rng)

    def why_none(self, model: str) -> tuple[bool, str]:
        """(all merely busy?, the reason in words) when ``pick`` found nothing for ``model``."""
        now = self.now_ms()
        offering = [c for c in self._by_id.values() if c.account.enabled and c.offers(model)]
        if not offering:
            return False, f"no upstream account offers model {model!r}"
        reasons = {c.name: c.unavailable(now) or "at its concurrency cap" for c in offering}
        busy = all(r == "at its concurrency cap" for r in reasons.values())
        return busy, "; ".join(f"{name}: {why}" for name, why in sorted(reasons.items()))

    async def on_error(
        self, channel: Channel, key: KeySlot, exc: UpstreamError, model: str | None
    ) -> None:
        """Bench what failed, by the fault its refusal row names (domain/refusals.py): the same row
        the failover reads next, so one refusal is classified once."""
        channel.stats.last_error = f"{exc.code}: {exc.message}"[:200]
        kind = exc.refusal.fault
        if kind in (Fault.UNKNOWN, Fault.REQUEST):
            return  # a task may exist, or the request itself was refused: no account is to blame
        s = self._settings
        now = self.now_ms()
        if kind is Fault.BUSY:
            if model is not None and s.channel_busy_seconds > 0:
                channel.busy_until[model] = now + int(s.channel_busy_seconds * 1000)
            return
        reason = f"upstream {exc.code}: {exc.message}"[:200]
        if kind is Fault.UNREACHABLE:
            channel.local_cooldown_until = now + int(s.channel_unreachable_seconds * 1000)
            channel.local_reason = reason
            self._flag(channel, "unreachable", reason)
            return
        until = now + int(s.channel_cooldown_seconds * 1000)
        others = [k for k in channel.keys if k is not key and k.usable(now)]
        if kind is Fault.KEY and others:
            key.cooldown_until, key.cooldown_reason = until, reason
            self._flag(channel, "key", f"key {key.hint or key.id}: {reason}")
            await self.store.set_key_cooldown(key.id, until, reason)
            return
        await self.cool(channel, until, reason, kind.value)

    async def cool(
        self, channel: Channel, until: int | None, reason: str | None, kind: str = "manual"
    ) -> None:
        """Bench (or, with ``until=None``, restore) an account on every node."""
        channel.account = replace(channel.account, cooldown_until=until, cooldown_reason=reason)
        if until is None:
            channel.local_cooldown_until, channel.local_reason = 0, None
            for k in channel.keys:
                k.cooldown_until, k.cooldown_reason = 0, None
        else:
            self._flag(channel, kind, reason or "")
        await self.store.set_cooldown(channel.account_id, until, reason)
        if until is None:
            for k in channel.keys:
                await self.store.set_key_cooldown(k.id, None, None)

    def _flag(self, channel: Channel, kind: str, reason: str) -> None:
        self._telemetry.channel_cooldown(channel.name, kind)
        log.warning(
            "upstream account %s benched (%s): %s",
            channel.name,
            kind,
            reason,
            extra={"account": channel.name},
        )
