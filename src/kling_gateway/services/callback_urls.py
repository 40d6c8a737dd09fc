"""The callback URL each task is created upstream with (services/inbound.py receives them).

``{base}/kling/callbacks/{public id}/{token}``, where the token is an HMAC of the public id under a
key derived from the master key: unguessable, yet recomputable by any node and for any resubmit, so
nothing per task is stored.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from ..crypto import load_master_key, same_secret
from ..settings import Settings

CALLBACK_PATH = "/kling/callbacks"
_LABEL = b"kling-gateway inbound callback token v1"


def callback_token(key: bytes, task_id: str) -> str:
    return hmac.new(key, task_id.encode(), hashlib.sha256).hexdigest()[:40]


@dataclass(frozen=True, slots=True)
class CallbackUrls:
    base: str | None  # KGW_PUBLIC_BASE_URL; None: Kling cannot reach us, the refresher polls
    key: bytes

    @classmethod
    def from_settings(cls, settings: Settings) -> CallbackUrls:
        key = hmac.new(load_master_key(settings), _LABEL, hashlib.sha256).digest()
        return cls(settings.public_base_url, key)

    def for_task(self, task_id: str) -> str | None:
        if self.base is None:
            return None
        return f"{self.base}{CALLBACK_PATH}/{task_id}/{callback_token(self.key, task_id)}"

    def genuine(self, task_id: str, token: str) -> bool:
        """The token is the one ``for_task`` put in the URL (and callbacks are on at all)."""
        return self.base is not None and same_secret(token, callback_token(self.key, task_id))
