"""Signed result links: bound to task, slot, expiry; keyed by the master key; stable in a bucket."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from kling_gateway.mirror.signing import UrlSigner, expiry, parse_slot, signed_url, signer_for, slot
from tests.conftest import make_settings

TASK = "100000123456789012"


@pytest.fixture
def signer() -> UrlSigner:
    return UrlSigner.from_master_key(Fernet.generate_key())


def test_round_trip(signer: UrlSigner) -> None:
    sig = signer.sign(TASK, 0, 1_900_000_000)
    assert len(sig) == 64 and int(sig, 16) >= 0
    assert signer.verify(TASK, 0, 1_900_000_000, sig)
    assert signer.verify(TASK, 0, 1_900_000_000, sig.upper())


@pytest.mark.parametrize(
    ("task_id", "index", "expires", "watermark"),
    [
        ("100000123456789013", 0, 1_900_000_000, False),  # another task
        (TASK, 1, 1_900_000_000, False),  # another video
        (TASK, 0, 1_900_000_001, False),  # a stretched expiry
        (TASK, 0, 1_900_000_000, True),  # the watermarked copy
    ],
)
def test_signature_binds_every_part(
    signer: UrlSigner, task_id: str, index: int, expires: int, watermark: bool
) -> None:
    sig = signer.sign(TASK, 0, 1_900_000_000)
    assert not signer.verify(task_id, index, expires, sig, watermark=watermark)


def test_another_master_key_does_not_verify(signer: UrlSigner) -> None:
    other = UrlSigner.from_master_key(Fernet.generate_key())
    assert not other.verify(TASK, 0, 1_900_000_000, signer.sign(TASK, 0, 1_900_000_000))


def test_key_is_derived_not_the_master_key() -> None:
    master = Fernet.generate_key()
    with pytest.raises(ValueError):
        UrlSigner(b"short")
    derived = UrlSigner.from_master_key(master)
    raw = UrlSigner(base64.urlsafe_b64decode(master))
    assert derived.sign(TASK, 0, 1) != raw.sign(TASK, 0, 1)


def test_signer_for_is_cached_per_settings(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    assert signer_for(settings) is signer_for(settings)
    other = make_settings(tmp_path)  # a fresh master key
    assert signer_for(other).sign(TASK, 0, 1) != signer_for(settings).sign(TASK, 0, 1)


def test_expiry_lasts_at_least_the_ttl_and_is_stable_within_a_bucket() -> None:
    for now in (1_700_000_000.0, 1_700_000_123.4, 1_700_003_599.9):
        exp = expiry(now, 86_400)
        assert now + 86_400 <= exp < now + 86_400 + 3600
    assert expiry(1_700_000_041.0, 600) == expiry(
        1_700_000_099.0, 600
    )  # bucket: a tenth of the TTL


def test_slot_names() -> None:
    assert slot(0) == "0" and slot(2, True) == "2-wm"
    assert parse_slot("0") == (0, False) and parse_slot("12-wm") == (12, True)
    for bad in ("", "-wm", "01", "1a", "1-WM", "1000", "٣", "0-wm-wm"):
        assert parse_slot(bad) is None


def test_signed_url_shape(signer: UrlSigner) -> None:
    url = signed_url(signer, "https://gw.example/", TASK, 0, 1_900_000_000, watermark=True)
    prefix = f"https://gw.example/kling/v1/results/{TASK}/0-wm.mp4?expires=1900000000&sig="
    assert url.startswith(prefix)
    assert signer.verify(TASK, 0, 1_900_000_000, url.removeprefix(prefix), watermark=True)
