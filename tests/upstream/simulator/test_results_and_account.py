"""Result MP4s, the account costs endpoint and the uvicorn entry point."""

from __future__ import annotations

import struct
from typing import Any

import pytest

from kling_gateway.upstream.simulator import SimulatorConfig, run_simulator, tiny_mp4

from .conftest import Harness

CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"dinf"}


def parse_boxes(
    data: bytes, start: int = 0, end: int | None = None
) -> list[tuple[bytes, int, int]]:
    """(type, payload_start, payload_end) per box, recursing into containers; strict on sizes."""
    end = len(data) if end is None else end
    boxes: list[tuple[bytes, int, int]] = []
    pos = start
    while pos < end:
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        assert size >= 8 and pos + size <= end, f"bad size for {kind!r}"
        boxes.append((kind, pos + 8, pos + size))
        if kind in CONTAINERS:
            boxes.extend(parse_boxes(data, pos + 8, pos + size))
        elif kind == b"stsd":
            boxes.extend(parse_boxes(data, pos + 16, pos + size))  # full box header + entry count
        elif kind == b"avc1":
            boxes.extend(
                parse_boxes(data, pos + 8 + 78, pos + size)
            )  # visual sample entry is 78 bytes
        pos += size
    assert pos == end
    return boxes


def test_tiny_mp4_is_well_formed_iso_bmff() -> None:
    data = tiny_mp4()
    assert 1000 < len(data) < 8192
    assert data[4:8] == b"ftyp" and data[8:12] == b"isom"
    boxes = parse_boxes(data)
    kinds = [kind for kind, _, _ in boxes]
    assert [k for k in kinds if k in {b"ftyp", b"moov", b"mdat"}] == [b"ftyp", b"moov", b"mdat"]
    for needed in (
        b"mvhd",
        b"tkhd",
        b"mdhd",
        b"hdlr",
        b"vmhd",
        b"dref",
        b"avc1",
        b"avcC",
        b"stts",
        b"stsz",
    ):
        assert needed in kinds
    by_kind = {kind: (s, e) for kind, s, e in boxes}
    stsz_start, _ = by_kind[b"stsz"]
    _, _, count = struct.unpack(">III", data[stsz_start : stsz_start + 12])
    sizes = struct.unpack(f">{count}I", data[stsz_start + 12 : stsz_start + 12 + 4 * count])
    stco_start, _ = by_kind[b"stco"]
    (offset,) = struct.unpack(">I", data[stco_start + 8 : stco_start + 12])
    mdat_start, mdat_end = by_kind[b"mdat"]
    assert offset == mdat_start and sum(sizes) == mdat_end - mdat_start
    pos = offset
    for size in sizes:  # each sample is one length-prefixed IDR NAL unit
        (nal_len,) = struct.unpack(">I", data[pos : pos + 4])
        assert nal_len == size - 4 and data[pos + 4] & 0x1F == 5
        pos += size
    hdlr_start, _ = by_kind[b"hdlr"]
    assert data[hdlr_start + 8 : hdlr_start + 12] == b"vide"


async def _finished_video(harness: Harness, body: dict[str, Any] | None = None) -> dict[str, Any]:
    created = (await harness.create(body)).json()["data"]
    harness.clock.advance(5)
    data = (await harness.get(f"/v1/videos/text2video/{created['task_id']}")).json()["data"]
    video: dict[str, Any] = data["task_result"]["videos"][0]
    return video


def _path(url: str) -> str:
    return url.removeprefix("http://127.0.0.1:8001")


async def test_result_urls_serve_the_mp4(harness: Harness) -> None:
    video = await _finished_video(harness, {"prompt": "p", "watermark_info": {"enabled": True}})
    for url in (video["url"], video["watermark_url"]):
        response = await harness.client.get(_path(url))
        assert response.status_code == 200
        assert response.headers["content-type"] == "video/mp4"
        assert response.content == tiny_mp4()


async def test_unknown_or_unwatermarked_or_expired_results_are_404(harness: Harness) -> None:
    assert (
        await harness.client.get("/results/00000000-0000-4000-8000-000000000000.mp4")
    ).status_code == 404
    video = await _finished_video(harness)
    assert (
        await harness.client.get(_path(video["url"]).replace(".mp4", "-wm.mp4"))
    ).status_code == 404
    harness.clock.advance(30 * 24 * 3600)
    assert (await harness.client.get(_path(video["url"]))).status_code == 404


async def test_account_costs_reports_a_draining_pack(harness: Harness) -> None:
    now_ms = int(harness.clock() * 1000)
    query = f"/account/costs?start_time={now_ms - 7 * 86_400_000}&end_time={now_ms}"
    before = (await harness.get(query)).json()
    assert before["code"] == 0
    [pack] = before["data"]["resource_pack_subscribe_infos"]
    assert before["data"]["code"] == 0
    assert pack["status"] == "online"
    assert pack["remaining_quantity"] == pack["total_quantity"] == 100_000
    await _finished_video(harness)
    [after] = (await harness.get(query)).json()["data"]["resource_pack_subscribe_infos"]
    assert after["remaining_quantity"] == 100_000 - 2.5
    outside = f"/account/costs?start_time={now_ms}&end_time={now_ms + 1}"
    assert (await harness.get(outside)).json()["data"]["resource_pack_subscribe_infos"] == []
    other_name = f"{query}&resource_pack_name=nope"
    assert (await harness.get(other_name)).json()["data"]["resource_pack_subscribe_infos"] == []


@pytest.mark.parametrize("query", ["", "?start_time=1", "?start_time=a&end_time=2"])
async def test_account_costs_requires_a_time_window(harness: Harness, query: str) -> None:
    response = await harness.get(f"/account/costs{query}")
    assert response.status_code == 400 and response.json()["code"] == 1201


async def test_account_costs_requires_auth(harness: Harness) -> None:
    assert (await harness.client.get("/account/costs?start_time=0&end_time=1")).json()[
        "code"
    ] == 1001


@pytest.mark.parametrize(
    ("host", "given", "expected"),
    [
        ("0.0.0.0", "http://127.0.0.1:8001", "http://127.0.0.1:9100"),
        ("127.0.0.2", "http://127.0.0.1:8001", "http://127.0.0.2:9100"),
        ("0.0.0.0", "https://sim.example", "https://sim.example"),
    ],
)
def test_run_simulator_points_result_urls_at_the_listener(
    monkeypatch: pytest.MonkeyPatch, host: str, given: str, expected: str
) -> None:
    calls: list[dict[str, Any]] = []

    def fake_run(app: Any, **kwargs: Any) -> None:
        calls.append({"app": app, **kwargs})

    import uvicorn

    monkeypatch.setattr(uvicorn, "run", fake_run)
    run_simulator(host, 9100, SimulatorConfig(public_base_url=given))
    [call] = calls
    assert call["host"] == host and call["port"] == 9100
    assert call["app"].state.sim.config.public_base_url == expected
