"""Kling's own callbacks, received (kling-api.md §6): the fast path of tracking, with polling as
fallback.

When ``KGW_PUBLIC_BASE_URL`` is set, each task is created upstream with a callback URL of its own,
``{base}/kling/callbacks/{public id}/{token}``, where the token is an HMAC of the public id under a
key derived from the master key: unguessable, yet recomputable by any node and for any resubmit, so
nothing per-task needs storing. When the operator configured Kling's webhook secret, the Standard
Webhooks signature is checked too. Anything that fails a check is answered exactly like an unknown
URL.

Updates go through ``Refresher.apply``: forward-only compare-and-set, so duplicates and out-of-order
deliveries change nothing, and a callback racing the poller is applied once.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import orjson
import standardwebhooks
from pydantic import SecretStr

from ..errors import NotFound
from ..storage.ports import TaskReads
from ..upstream.client import UpstreamTask
from .callback_urls import CALLBACK_PATH as CALLBACK_PATH
from .callback_urls import CallbackUrls
from .refresh import Refresher

log = logging.getLogger("kling_gateway.inbound")


def _refuse() -> NotFound:
    return NotFound("requested resource does not exist")


@dataclass(frozen=True, slots=True)
class Inbound:
    callbacks: CallbackUrls
    webhook_secret: SecretStr | None  # KGW_UPSTREAM_WEBHOOK_SECRET
    tasks: TaskReads
    refresher: Refresher

    async def receive(
        self, task_id: str, token: str, body: bytes, headers: Mapping[str, str]
    ) -> bool:
        """Apply one inbound callback. True when it moved the task; NotFound for anything not
        genuine."""
        if not self.callbacks.genuine(task_id, token):
            raise _refuse()
        secret = self.webhook_secret
        if secret is not None:
            try:
                standardwebhooks.Webhook(secret.get_secret_value()).verify(body, dict(headers))
            except Exception:  # the library raises its own error types; any failure is a refusal
                log.warning("inbound callback for task %s failed signature verification", task_id)
                raise _refuse() from None
        try:
            data = orjson.loads(body)
            update = UpstreamTask.from_wire(data)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
            raise _refuse() from None
        record = await self.tasks.get(task_id)
        if record is None:
            raise _refuse()
        ours = update.external_task_id == task_id
        theirs = record.upstream_task_id is not None and update.task_id == record.upstream_task_id
        if not (ours or theirs):
            log.warning(
                "inbound callback for task %s names another upstream task; ignored", task_id
            )
            raise _refuse()
        return await self.refresher.apply(record, update, by="callback")
