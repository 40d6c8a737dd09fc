"""Image inputs: URL shape, raw base64, size, format and sides, each refusal naming the field."""

from __future__ import annotations

import base64
import os
from fractions import Fraction
from typing import Any

import pytest

from kling_gateway.domain.kinds.b64 import parse_base64
from kling_gateway.domain.kinds.images import FIRST_FRAME, MAX_IMAGE_BYTES, ImageRule, check_image
from kling_gateway.errors import InvalidParameter
from tests.domain.kinds.media import JPEG, PNG, URL, b64, jpeg, png


def rejection(value: Any, rule: ImageRule = FIRST_FRAME) -> str:
    with pytest.raises(InvalidParameter) as info:
        check_image("image", value, rule)
    assert info.value.code == 1201
    return info.value.message


ACCEPTED: dict[str, tuple[Any, ImageRule, tuple[Any, ...]]] = {
    "png 320": (PNG, ImageRule(), ("png", 320, 320)),
    "jpeg 320": (JPEG, ImageRule(), ("jpeg", 320, 320)),
    "png 300 exactly": (b64(png(300, 300)), ImageRule(), ("png", 300, 300)),
    "png 750x300 (2.5:1)": (b64(png(750, 300)), ImageRule(), ("png", 750, 300)),
    "jpeg 300x750 (1:2.5)": (b64(jpeg(300, 750)), ImageRule(), ("jpeg", 300, 750)),
    "jpeg progressive": (b64(jpeg(400, 300, sof=0xC2)), ImageRule(), ("jpeg", 400, 300)),
    "jpeg after 70 KB of EXIF": (b64(jpeg(640, 480, exif=65000)), ImageRule(), ("jpeg", 640, 480)),
    "tail rule: no aspect": (b64(png(1000, 300)), ImageRule(aspect=None), ("png", 1000, 300)),
    "max side 65536 exactly": (b64(png(65536, 30000)), ImageRule(max_side=65536, aspect=None), ()),
}


@pytest.mark.parametrize(("value", "rule", "facts"), ACCEPTED.values(), ids=ACCEPTED.keys())
def test_accepted_base64(value: str, rule: ImageRule, facts: tuple[Any, ...]) -> None:
    image = check_image("image", value, rule)
    assert image.url is None
    assert image.size == len(base64.b64decode(value))
    if facts:
        assert (image.format, image.width, image.height) == facts


@pytest.mark.parametrize(
    "url",
    [URL, "http://10.0.0.1:8080/a.jpg", "https://cdn.example.com/a?sig=" + "x" * 3000],
)
def test_urls_are_taken_by_shape_only(url: str) -> None:
    image = check_image("image", url)
    assert image.url == url
    assert image.size is None


REJECTED: dict[str, tuple[Any, str]] = {
    "number": (5, "image: must be a string: an image URL or raw base64 (got 5)"),
    "null": (None, "image: must be a string: an image URL or raw base64 (got null)"),
    "empty": ("", "image: must not be empty"),
    "data URL": (
        "data:image/png;base64," + PNG,
        "image: must be raw base64 without a 'data:' prefix",
    ),
    "ftp URL": ("ftp://example.com/a.png", "image: URL must be http or https (got scheme 'ftp')"),
    "URL without host": ("https:///a.png", "image: URL must include a host"),
    "URL with space": ("https://example.com/a b.png", "image: URL must not contain spaces"),
    "URL bad port": ("https://example.com:99999/a.png", "image: is not a valid URL"),
    "URL too long": (
        "https://example.com/" + "a" * 4100,
        "image: URL must be at most 4096 characters",
    ),
    "base64 with newline": (PNG[:76] + "\n" + PNG[76:], "image: is not valid base64"),
    "base64 bad length": (PNG[:-1], "image: is not valid base64"),
    "base64 bad char": ("*" + PNG[1:], "image: is not valid base64"),
    "base64 url-safe alphabet": (PNG[:8] + "-_" + PNG[10:], "image: is not valid base64"),
    "base64 padding inside": (PNG[:4] + "AA==" + PNG[8:], "image: is not valid base64"),
    "base64 only padding": ("====", "image: is not valid base64"),
    "non-ascii": ("é" * 4, "image: is not valid base64"),
    "gif": (
        b64(b"GIF89a" + b"\x00" * 30),
        "image: must be a JPEG or PNG image (the data is neither)",
    ),
    "truncated png": (b64(png()[:20]), "image: is not a readable PNG"),
    "jpeg without frame": (
        b64(b"\xff\xd8\xff\xda\x00\x02\xff\xd9"),
        "image: is not a readable JPEG (no frame header",
    ),
    "jpeg garbage after SOI": (b64(b"\xff\xd8" + b"\x00" * 30), "image: is not a readable JPEG"),
    "png 299 wide": (
        b64(png(299, 400)),
        "image: width and height must be at least 300 px (got 299x400)",
    ),
    "jpeg 299 high": (
        b64(jpeg(400, 299)),
        "image: width and height must be at least 300 px (got 400x299)",
    ),
    "png 751x300 (wider than 2.5:1)": (
        b64(png(751, 300)),
        "image: aspect ratio (width:height) must be between 1:2.5 and 2.5:1 (got 751x300)",
    ),
    "jpeg 300x751 (taller than 1:2.5)": (
        b64(jpeg(300, 751)),
        "image: aspect ratio (width:height) must be between 1:2.5 and 2.5:1 (got 300x751)",
    ),
    "png zero height": (b64(png(400, 0)), "image: image header gives an empty picture (got 400x0)"),
}


@pytest.mark.parametrize(("value", "expected"), REJECTED.values(), ids=REJECTED.keys())
def test_rejected_with_field_and_rule_named(value: Any, expected: str) -> None:
    assert rejection(value).startswith(expected)


def test_decoded_size_limit_both_sides() -> None:
    exact = png() + b"\x00" * (2000 - len(png()))
    assert check_image("image", b64(exact), ImageRule(max_bytes=2000)).size == 2000
    message = rejection(b64(exact + b"\x00"), ImageRule(max_bytes=2000))
    assert message == "image: decodes to 2001 bytes; the limit is 2000 bytes"


def test_oversized_base64_refused_from_its_length() -> None:
    """An 11 MB payload is refused by length, whatever its content."""
    text = b64(png() + bytes(MAX_IMAGE_BYTES + 1 - len(png())))
    assert rejection(text) == "image: decodes to 10485761 bytes; the limit is 10485760 bytes"


def test_max_side_and_zero_sides() -> None:
    rule = ImageRule(max_side=65536, aspect=None)
    assert rejection(b64(png(65537, 400)), rule).startswith(
        "image: width and height must be at most 65536 px (got 65537x400)"
    )
    no_minimum = ImageRule(min_side=0, aspect=None)
    assert rejection(b64(png(0, 400)), no_minimum).startswith(
        "image: image header gives an empty picture (got 0x400)"
    )


def test_custom_aspect_bounds_are_exact() -> None:
    square = ImageRule(aspect=(Fraction(1), Fraction(1)))
    check_image("image", b64(png(400, 400)), square)
    assert "between 1:1 and 1:1" in rejection(b64(png(401, 400)), square)


@pytest.mark.parametrize("offset", [0, 1, 2, 3, 1000, 4095, 4096, 4097])
@pytest.mark.parametrize("count", [1, 2, 3, 7, 100])
def test_windowed_read_matches_a_full_decode(offset: int, count: int) -> None:
    raw = os.urandom(4097)
    data = parse_base64("f", b64(raw), 10_000)
    assert data.size == len(raw)
    assert data.read(offset, count) == raw[offset : offset + count]


@pytest.mark.parametrize("length", [1, 2, 3, 4, 5])
def test_size_from_length_and_padding(length: int) -> None:
    assert parse_base64("f", b64(b"x" * length), 10).size == length


def test_a_bad_character_past_the_first_slice_is_found() -> None:
    text = b64(png() + bytes(3 * 1024 * 1024))
    at = len(text) - 1000  # well inside the third 1 MiB slice
    assert rejection(text[:at] + "!" + text[at + 1 :]).startswith("image: is not valid base64")
