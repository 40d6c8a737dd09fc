"""Outbound webhooks: each user's signing secret, the signed headers, and the delivery log /
redeliver use cases shared by the CLI, the admin API and the user's own routes. Sending lives in
worker/webhooks.py.

Signing follows Standard Webhooks (what Kling itself uses, kling-api.md §6) through the
``standardwebhooks`` package, so any receiver built for Kling's signed callbacks — or any Standard
Webhooks library — verifies ours unchanged. The secret is per user, not per key: a callback belongs
to the user's task whichever key created it.
"""

from __future__ import annotations

import base64
import datetime as dt
import secrets
from dataclasses import dataclass
from typing import Any

from standardwebhooks import Webhook

from .. import __version__
from ..domain.shape import storable
from ..errors import NotFound
from ..storage.deliveries import Attempt, Delivery, DeliveryStore, UserNotFound, WebhookSecrets
from .admin import AdminError, show_task
from .auth import Principal
from .gateway import Gateway

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 24  # 192-bit HMAC key, the size Standard Webhooks' reference libraries generate
USER_AGENT = f"kling-gateway/{__version__}"


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def deliveries(gw: Gateway) -> DeliveryStore:
    """The Gateway has no delivery store of its own; the store is stateless, so one per use is
    free."""
    return DeliveryStore(gw.engine)


async def user_secret(gw: Gateway, user_id: int) -> str:
    """The user's signing secret, created on first use (first read, or first callback sent)."""
    store = WebhookSecrets(gw.engine)
    try:
        stored = await store.get(user_id)
        if stored is None:
            await store.set(user_id, gw.box.encrypt(new_secret()), only_if_absent=True)
            stored = await store.get(
                user_id
            )  # ours, or the one a concurrent first use stored first
    except UserNotFound as exc:
        raise AdminError(str(exc)) from None
    assert stored is not None
    return gw.box.decrypt(stored)


async def rotate_secret(gw: Gateway, user_id: int) -> str:
    """Replace the secret at once: callbacks sent from now on are signed with the new one only."""
    secret = new_secret()
    if not await WebhookSecrets(gw.engine).set(user_id, gw.box.encrypt(secret)):
        raise AdminError(f"no user with id {user_id}")
    return secret


async def secret_for_user_name(gw: Gateway, name: str, *, rotate: bool = False) -> str:
    user = await gw.accounts.get_user(name)
    if user is None:
        raise AdminError(f"no user {name!r}")
    return await (rotate_secret(gw, user.id) if rotate else user_secret(gw, user.id))


def signed_headers(secret: str, event_id: str, timestamp: int, body: str) -> dict[str, str]:
    """The request headers of one send. ``timestamp`` (Unix seconds) comes from the gateway clock;
    the receiver rejects one more than 5 minutes off, so it is taken per send, never frozen with the
    event."""
    when = dt.datetime.fromtimestamp(timestamp, dt.UTC)
    return {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": USER_AGENT,
        "webhook-id": event_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": Webhook(secret).sign(event_id, when, body),
    }


# ------------------------------------------------------------------------------------------
# delivery log
@dataclass(frozen=True, slots=True)
class LogEntry:
    delivery: Delivery
    attempts: list[Attempt]


async def delivery_log(gw: Gateway, task_id: str) -> list[LogEntry]:
    """Every event of the task, oldest first, each with its attempts (time, HTTP status, latency,
    error)."""
    store = deliveries(gw)
    by_delivery = await store.attempts_for_task(task_id)
    return [LogEntry(d, by_delivery.get(d.id, [])) for d in await store.for_task(task_id)]


def entry_json(entry: LogEntry, *, operator: bool = False) -> dict[str, Any]:
    """One log entry for the HTTP APIs. The frozen payload is the operator's to see; the user
    already has the task object through the query API."""
    d = entry.delivery
    out: dict[str, Any] = {
        "delivery_id": d.id,
        "task_id": d.task_id,
        "task_status": d.task_status,
        "url": d.url,
        "status": d.status,
        "attempts": d.attempts,
        "next_attempt_at": d.next_attempt_at,
        "last_status_code": d.last_status_code,
        "last_error": d.last_error,
        "created_at": d.created_at,
        "updated_at": d.updated_at,
        "delivered_at": d.delivered_at,
        "attempt_log": [
            {
                "attempted_at": a.attempted_at,
                "status_code": a.status_code,
                "latency_ms": a.latency_ms,
                "error": a.error,
            }
            for a in entry.attempts
        ],
    }
    if operator:
        out["user_id"] = d.user_id
        out["payload"] = d.payload
    return out


async def user_delivery_log(gw: Gateway, principal: Principal, ident: str) -> list[dict[str, Any]]:
    """The log of one of the caller's tasks, found by our id or the caller's own
    external_task_id."""
    record = await gw.tasks.find_for_user(principal.user_id, ident) if storable(ident) else None
    if record is None:
        raise NotFound(f"task {ident!r} does not exist")
    return [entry_json(e) for e in await delivery_log(gw, record.id)]


async def admin_delivery_log(gw: Gateway, ident: str, user: str | None = None) -> list[LogEntry]:
    """By our id or the client's external_task_id, found as ``admin.show_task`` finds it."""
    return await delivery_log(gw, (await show_task(gw, ident, user)).id)


async def redeliver(gw: Gateway, delivery_id: str) -> Delivery:
    """Send the event again as soon as a worker runs, with the same webhook-id (receivers
    deduplicate on it). It gets a fresh attempt even after it gave up; the retry window still counts
    from the event."""
    store = deliveries(gw)
    if not storable(delivery_id) or not await store.redeliver(delivery_id, gw.now_ms()):
        raise AdminError(f"no delivery {delivery_id!r}")
    found = await store.get(delivery_id)
    assert found is not None
    return found
