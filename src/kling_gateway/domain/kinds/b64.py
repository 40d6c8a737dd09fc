"""Raw base64 media in a request body, checked without decoding it whole.

Kling takes images and audio as raw base64 (no ``data:`` prefix, no line breaks). Its size is known
from the length, its alphabet is checked in bounded slices, and only the few bytes a header check
needs are decoded, so a 14 MB string costs one pass and no second full-size copy.
"""

from __future__ import annotations

import binascii

from kling_gateway.domain._checks import fail

_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
# Slices for the alphabet pass: the memory held at once stays small whatever the body size.
_SLICE = 1 << 20  # characters, a multiple of 4


class Base64Data:
    """A validated raw base64 string; ``read`` decodes a byte window on demand."""

    __slots__ = ("_text", "size")

    def __init__(self, text: str, size: int) -> None:
        self._text = text
        self.size = size  # decoded bytes

    def read(self, offset: int, count: int) -> bytes:
        """Decoded bytes ``[offset, offset + count)``, fewer at the end of the data."""
        if offset >= self.size or count <= 0:
            return b""
        first = offset // 3 * 4
        last = min(len(self._text), -(-(offset + count) // 3) * 4)
        chunk = binascii.a2b_base64(self._text[first:last])
        start = offset - first // 4 * 3
        return chunk[start : start + count]


def parse_base64(field: str, text: str, max_bytes: int) -> Base64Data:
    """Check ``text`` is raw standard base64 whose decoded size is at most ``max_bytes``.

    Kling's own answer for a malformed string is "File is not in a valid base64 format"; the rule is
    spelled out here so the client knows what to change.
    """
    if text.startswith("data:"):
        fail(field, "must be raw base64 without a 'data:' prefix (send only the part after ',')")
    if not text.isascii() or len(text) % 4:
        fail(field, "is not valid base64 (standard alphabet, length a multiple of 4, no spaces)")
    body = text.rstrip("=")
    padding = len(text) - len(body)
    if padding > 2 or not body:
        fail(field, "is not valid base64 (standard alphabet, length a multiple of 4, no spaces)")
    size = len(text) // 4 * 3 - padding
    if size > max_bytes:
        fail(field, f"decodes to {size} bytes; the limit is {max_bytes} bytes")
    for start in range(0, len(body), _SLICE):
        if body[start : start + _SLICE].encode("ascii").translate(None, _ALPHABET):
            fail(
                field,
                "is not valid base64 (standard alphabet, length a multiple of 4, no spaces)",
            )
    return Base64Data(text, size)
