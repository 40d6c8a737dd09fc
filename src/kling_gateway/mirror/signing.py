"""Expiring signed URLs for mirrored videos.

A result link must work without the client's API key (players, CDNs, ``<video src>`` and Kling
clients fetch ``videos[].url`` anonymously, exactly as they do Kling's own links), yet must not let
anyone who can guess a task id download its video. So the link carries ``expires`` and an
HMAC-SHA256 over (task id, video slot, expiry). The HMAC key is derived with HKDF from the master
key under a fixed label: nothing new to configure or rotate, and the key is distinct from the Fernet
keys that encrypt secrets.

Expiries are rounded up to a bucket of the TTL, so the same task read twice in a row renders the
same URL (client-side caches and change detection keep working) while every URL still lives at least
the TTL.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import math

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..crypto import load_master_key, same_secret
from ..settings import Settings

RESULTS_PREFIX = "/kling/v1/results"
_LABEL = b"kling-gateway/result-url/v1"


def slot(index: int, watermark: bool = False) -> str:
    """A task's video's path name: ``0`` for the first video, ``0-wm`` for its watermarked copy."""
    return f"{index}-wm" if watermark else str(index)


def parse_slot(name: str) -> tuple[int, bool] | None:
    """Inverse of ``slot``; None for anything else (so odd paths become a plain 404)."""
    watermark = name.endswith("-wm")
    digits = name[:-3] if watermark else name
    if not (0 < len(digits) <= 3 and digits.isascii() and digits.isdigit()):
        return None
    if len(digits) > 1 and digits[0] == "0":
        return None  # one spelling per slot, so a signature covers exactly one path
    return int(digits), watermark


class UrlSigner:
    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("result URL key must be at least 32 bytes")
        self._key = key

    @classmethod
    def from_master_key(cls, master_key: bytes) -> UrlSigner:
        """``master_key`` as stored (the Fernet key's urlsafe base64)."""
        raw = base64.urlsafe_b64decode(master_key.strip())
        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_LABEL)
        return cls(hkdf.derive(raw))

    def _mac(self, task_id: str, index: int, expires: int, watermark: bool) -> str:
        message = f"{task_id}\n{slot(index, watermark)}\n{expires}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def sign(self, task_id: str, index: int, expires: int, *, watermark: bool = False) -> str:
        return self._mac(task_id, index, expires, watermark)

    def verify(
        self, task_id: str, index: int, expires: int, sig: str, *, watermark: bool = False
    ) -> bool:
        """Constant-time check of the signature only; the caller checks ``expires`` on its clock."""
        return same_secret(sig.lower(), self._mac(task_id, index, expires, watermark))


@functools.lru_cache(maxsize=8)
def signer_for(settings: Settings) -> UrlSigner:
    """One signer per Settings (frozen, hashable): the read path renders URLs on every task GET and
    must not re-read the key file or re-run HKDF each time."""
    return UrlSigner.from_master_key(load_master_key(settings))


def expiry(now: float, ttl_seconds: int) -> int:
    """``now + ttl`` rounded up to a bucket of a tenth of the TTL (at most an hour)."""
    bucket = max(1, min(3600, ttl_seconds // 10))
    return math.ceil((now + ttl_seconds) / bucket) * bucket


def result_path(task_id: str, index: int, watermark: bool = False) -> str:
    return f"{RESULTS_PREFIX}/{task_id}/{slot(index, watermark)}.mp4"


def signed_url(
    signer: UrlSigner,
    base_url: str,
    task_id: str,
    index: int,
    expires: int,
    *,
    watermark: bool = False,
) -> str:
    sig = signer.sign(task_id, index, expires, watermark=watermark)
    path = result_path(task_id, index, watermark)
    return f"{base_url.rstrip('/')}{path}?expires={expires}&sig={sig}"
