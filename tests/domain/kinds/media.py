"""Test helpers for the kinds: small real PNG and JPEG files built in the test (as raw base64,
like a client sends them), body builders and the refusal helper."""

from __future__ import annotations

import base64
import struct
import zlib
from collections.abc import Callable
from typing import Any

import pytest

from kling_gateway.errors import InvalidParameter


def png(width: int = 320, height: int = 320) -> bytes:
    """A valid grey PNG: signature, IHDR, one IDAT of filtered zero rows, IEND."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = zlib.compress((b"\x00" + b"\x00" * width) * height)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    )


def jpeg(width: int = 320, height: int = 320, *, exif: int = 0, sof: int = 0xC0) -> bytes:
    """A JPEG marker stream: SOI, JFIF APP0, an optional ``exif``-byte APP1, a frame header, a
    Huffman table, an empty scan and EOI. Enough for any header reader; no pixels to decode."""

    def segment(marker: int, data: bytes) -> bytes:
        return bytes([0xFF, marker]) + struct.pack(">H", len(data) + 2) + data

    app0 = segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
    app1 = segment(0xE1, b"Exif\x00\x00" + b"\x00" * exif) if exif else b""
    frame = segment(sof, struct.pack(">BHHB", 8, height, width, 1) + b"\x01\x11\x00")
    huffman = segment(0xC4, b"\x00" + b"\x00" * 16)
    scan = segment(0xDA, b"\x01\x01\x00\x00\x3f\x00")
    return b"\xff\xd8" + app0 + app1 + huffman + frame + scan + b"\x00\xff\xd9"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


PNG = b64(png())
JPEG = b64(jpeg())
URL = "https://example.com/cat.png"


DROP = object()  # marks a key to remove from a base body


def merge(base: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``fields`` set, or removed where the value is DROP."""
    out = dict(base)
    for key, value in fields.items():
        if value is DROP:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def refusal(validate: Callable[[Any], object], data: Any) -> str:
    """The 1201 message ``validate`` gives for ``data``."""
    with pytest.raises(InvalidParameter) as info:
        validate(data)
    assert info.value.code == 1201
    assert info.value.http_status == 400
    return info.value.message
