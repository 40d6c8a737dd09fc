"""LocalDirStore: atomic writes, nothing left on failure or cancel, safe keys, retention scan."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kling_gateway.mirror.storage import InvalidKey, LocalDirStore


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def files_under(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


async def test_put_open_delete_round_trip(tmp_path: Path) -> None:
    store = LocalDirStore(tmp_path / "media")
    assert not (tmp_path / "media").exists()  # nothing is created until the first write
    size = await store.put("20250101/123/0.mp4", chunks(b"abc", b"", b"def"))
    assert size == 6
    stored = await store.open("20250101/123/0.mp4")
    assert stored is not None and stored.size == 6 and stored.path.read_bytes() == b"abcdef"
    assert files_under(store.root) == ["20250101/123/0.mp4"]

    assert await store.delete("20250101/123/0.mp4") is True
    assert await store.delete("20250101/123/0.mp4") is False
    assert await store.open("20250101/123/0.mp4") is None
    assert list(store.root.iterdir()) == []  # emptied folders go with the file


async def test_large_body_is_written_in_buffered_pieces(tmp_path: Path) -> None:
    store = LocalDirStore(tmp_path)
    piece = os.urandom(300 * 1024)
    size = await store.put("a/big.mp4", chunks(*([piece] * 8)))
    assert size == len(piece) * 8
    assert (tmp_path / "a" / "big.mp4").read_bytes() == piece * 8


async def test_failing_source_leaves_nothing_and_keeps_the_previous_file(tmp_path: Path) -> None:
    store = LocalDirStore(tmp_path)
    await store.put("a/0.mp4", chunks(b"old"))

    async def broken() -> AsyncIterator[bytes]:
        yield b"new-part"
        raise RuntimeError("network broke")

    with pytest.raises(RuntimeError):
        await store.put("a/0.mp4", broken())
    assert files_under(tmp_path) == [
        "a/0.mp4"
    ]  # no .part file; readers still see the whole old file
    assert (tmp_path / "a" / "0.mp4").read_bytes() == b"old"


async def test_cancelled_write_leaves_nothing(tmp_path: Path) -> None:
    store = LocalDirStore(tmp_path)
    started = asyncio.Event()

    async def endless() -> AsyncIterator[bytes]:
        while True:
            started.set()
            yield b"x" * 1024
            await asyncio.sleep(0.001)

    task = asyncio.create_task(store.put("a/0.mp4", endless()))
    await started.wait()
    await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert files_under(tmp_path) == []


@pytest.mark.parametrize(
    "key",
    [
        "../x.mp4",
        "a/../../x.mp4",
        "/etc/passwd",
        "a//b.mp4",
        ".hidden",
        "a/.x.part",
        "a\\b",
        "",
        "a/b/",
    ],
)
async def test_unsafe_keys_are_refused(tmp_path: Path, key: str) -> None:
    store = LocalDirStore(tmp_path / "root")
    with pytest.raises(InvalidKey):
        await store.put(key, chunks(b"x"))
    with pytest.raises(InvalidKey):
        await store.open(key)


async def test_delete_refuses_traversal(tmp_path: Path) -> None:
    store = LocalDirStore(tmp_path / "root")
    (tmp_path / "victim").write_text("keep")
    for key in ("../victim", "a/../../victim", "/victim"):
        with pytest.raises(InvalidKey):
            await store.delete(key)
    assert (tmp_path / "victim").exists()


async def test_older_than_lists_old_files_and_abandoned_temp_files(tmp_path: Path) -> None:
    store = LocalDirStore(tmp_path)
    assert await store.older_than(1e12) == []
    await store.put("d1/1/0.mp4", chunks(b"old"))
    await store.put("d2/2/0.mp4", chunks(b"new"))
    stale = tmp_path / "d1" / "1" / ".0.mp4.abcdef012345.part"  # what a killed process leaves
    stale.write_bytes(b"partial")
    for path in (tmp_path / "d1" / "1" / "0.mp4", stale):
        os.utime(path, (1000.0, 1000.0))

    old = await store.older_than(2000.0)
    assert old == ["d1/1/.0.mp4.abcdef012345.part", "d1/1/0.mp4"]
    for key in old:
        assert await store.delete(key)
    assert files_under(tmp_path) == ["d2/2/0.mp4"]
    assert not (tmp_path / "d1").exists()
