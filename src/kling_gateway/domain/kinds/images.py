"""Image inputs: an http(s) URL or raw base64 JPEG/PNG (kling-video-family.md §1, §2.1).

A URL is checked for scheme and shape only: Kling fetches it, the gateway never does. Base64 is
checked for decoded size, format (magic bytes) and pixel size, read from the PNG IHDR chunk or the
JPEG frame header, so a refused image costs the client a fast 1201 instead of a failed task.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from urllib.parse import urlsplit

from kling_gateway.domain._checks import fail, show
from kling_gateway.domain.kinds.b64 import Base64Data, parse_base64

MiB = 1024 * 1024
MAX_IMAGE_BYTES = 10 * MiB
MAX_URL = 4096  # signed object-store URLs run to a few hundred characters; this is far above
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers carry the size; C4 (Huffman), C8 (reserved), CC (arithmetic) do not.
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})  # markers without a length field
_MAX_SEGMENTS = 256  # a camera JPEG has a dozen before its frame header


@dataclass(frozen=True, slots=True)
class ImageRule:
    """What one image field accepts; the default is Kling's usual first-frame rule."""

    max_bytes: int = MAX_IMAGE_BYTES
    min_side: int = 300
    max_side: int | None = None
    # width / height bounds, exact; None: no aspect rule for this field (Kling's image_tail)
    aspect: tuple[Fraction, Fraction] | None = (Fraction(2, 5), Fraction(5, 2))


FIRST_FRAME = ImageRule()
# Kling states no aspect rule for image_tail (kling-video-family.md §2.1)
TAIL_FRAME = ImageRule(aspect=None)


@dataclass(frozen=True, slots=True)
class ImageInput:
    """A checked image: ``url`` set for a URL, else the base64 facts."""

    url: str | None
    format: str | None  # "jpeg" or "png" for base64
    width: int | None
    height: int | None
    size: int | None  # decoded bytes


def check_url(field: str, url: str, *, max_len: int = MAX_URL) -> str:
    """An absolute http(s) URL with a host, without spaces or control characters."""
    if len(url) > max_len:
        fail(field, f"URL must be at most {max_len} characters (got {len(url)})")
    if " " in url or not url.isprintable():
        fail(field, "URL must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 -- raises ValueError for a non-numeric or out-of-range port
    except ValueError:
        fail(field, "is not a valid URL")
    if parts.scheme not in ("http", "https"):
        fail(field, f"URL must be http or https (got scheme {show(parts.scheme)})")
    if not host:
        fail(field, "URL must include a host")
    return url


def check_video_url(field: str, value: object) -> str:
    """Kling takes videos by URL only, never as base64."""
    if value is None:
        fail(field, "required")
    if not isinstance(value, str) or not value:
        fail(field, f"must be a video URL (got {show(value)})")
    if not is_url(value):
        fail(field, "must be an http or https URL (Kling takes no base64 video)")
    return check_url(field, value)


def is_url(text: str) -> bool:
    """Base64 has no ':', so any string with a scheme separator is meant as a URL."""
    return "://" in text


def check_image(field: str, value: object, rule: ImageRule = FIRST_FRAME) -> ImageInput:
    """An image field: a URL (shape only) or raw base64 (size, format, sides, aspect)."""
    if not isinstance(value, str):
        fail(field, f"must be a string: an image URL or raw base64 (got {show(value)})")
    if not value:
        fail(field, "must not be empty")
    if is_url(value):
        return ImageInput(check_url(field, value), None, None, None, None)
    data = parse_base64(field, value, rule.max_bytes)
    kind, width, height = read_header(field, data)
    _check_sides(field, width, height, rule)
    return ImageInput(None, kind, width, height, data.size)


def read_header(field: str, data: Base64Data) -> tuple[str, int, int]:
    """(format, width, height) from the first bytes of a PNG or JPEG."""
    head = data.read(0, 24)
    if head.startswith(_PNG_MAGIC):
        if head[12:16] != b"IHDR" or len(head) < 24:
            fail(field, "is not a readable PNG (no IHDR header)")
        width = int.from_bytes(head[16:20], "big")
        height = int.from_bytes(head[20:24], "big")
        return "png", width, height
    if head.startswith(b"\xff\xd8"):
        width, height = _jpeg_size(field, data)
        return "jpeg", width, height
    fail(field, "must be a JPEG or PNG image (the data is neither)")


def _jpeg_size(field: str, data: Base64Data) -> tuple[int, int]:
    """Walk the marker segments to the first frame header, decoding only each segment's head."""
    pos = 2
    for _ in range(_MAX_SEGMENTS):
        head = data.read(pos, 9)
        if len(head) < 2 or head[0] != 0xFF:
            break
        marker = head[1]
        if marker == 0xFF:  # fill byte before a marker
            pos += 1
            continue
        if marker in _STANDALONE:
            pos += 2
            continue
        if marker in _SOF and len(head) == 9:
            height = int.from_bytes(head[5:7], "big")
            width = int.from_bytes(head[7:9], "big")
            return width, height
        if marker in (0xD9, 0xDA) or len(head) < 4:  # end of image or scan data: no frame header
            break
        pos += 2 + int.from_bytes(head[2:4], "big")
    fail(field, "is not a readable JPEG (no frame header with its width and height)")


def _check_sides(field: str, width: int, height: int, rule: ImageRule) -> None:
    got = f"got {width}x{height}"
    if not width or not height:
        fail(field, f"image header gives an empty picture ({got})")
    if min(width, height) < rule.min_side:
        fail(field, f"width and height must be at least {rule.min_side} px ({got})")
    if rule.max_side is not None and max(width, height) > rule.max_side:
        fail(field, f"width and height must be at most {rule.max_side} px ({got})")
    if rule.aspect is None:
        return
    low, high = rule.aspect
    if not low <= Fraction(width, height) <= high:  # exact: no float rounding at a boundary
        fail(
            field,
            f"aspect ratio (width:height) must be between {_ratio(low)} and {_ratio(high)} ({got})",
        )


def _ratio(value: Fraction) -> str:
    """2/5 as "1:2.5", 5/2 as "2.5:1": Kling's own way of writing the bounds."""
    if value < 1:
        return f"1:{float(1 / value):g}"
    return f"{float(value):g}:1"
