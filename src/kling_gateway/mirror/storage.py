"""Where mirrored videos live: a small ``MediaStore`` protocol and the local-directory backend.

The protocol is the seam for other backends (an S3-compatible one would implement the same five
methods and serve reads by redirecting to a presigned URL instead of a local path); only
``LocalDirStore`` exists today.

Writes go to a temp file beside the target and are renamed into place after an fsync, so a reader
(the results route) sees either no file or the whole file, never a half-written one, and a crash or
an aborted download leaves only a ``.part`` file that the retention sweep removes later. Keys are
validated to a strict shape so no key can step outside the root.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
from collections.abc import AsyncIterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

_SEGMENT = r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}"
_KEY = re.compile(rf"{_SEGMENT}(?:/{_SEGMENT}){{0,7}}")
PART_SUFFIX = ".part"
# What ``older_than`` may return: a key, or a temp file an interrupted write left behind.
_ENTRY = re.compile(rf"(?:{_SEGMENT}/){{0,7}}(?:{_SEGMENT}|\.{_SEGMENT})")
# Chunks from the network are small (tens of KiB); writing each one through a worker thread would
# cost more in thread hops than the write itself, so they are gathered and written a MiB at a time.
WRITE_BUFFER_BYTES = 1024 * 1024


class InvalidKey(ValueError):
    """A key that is not a plain relative path of safe segments (the store refuses it outright)."""


@dataclass(frozen=True, slots=True)
class StoredMedia:
    """A stored object that can be served straight from disk."""

    key: str
    path: Path
    size: int
    modified: float  # Unix seconds


class MediaStore(Protocol):
    async def put(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        """Store everything ``chunks`` yields under ``key``; returns the size. If ``chunks`` raises
        (or the caller is cancelled) nothing is left under ``key`` and the error propagates."""

    async def open(self, key: str) -> StoredMedia | None: ...

    async def delete(self, key: str) -> bool: ...

    async def older_than(self, cutoff: float) -> list[str]:
        """Keys (and abandoned temp files) last written before ``cutoff`` (Unix seconds)."""


def check_key(key: str) -> str:
    if not _KEY.fullmatch(key) or key.endswith(PART_SUFFIX):
        raise InvalidKey(f"not a valid media key: {key!r}")
    return key


class LocalDirStore:
    """Files under ``root``; directories are created on the first write, never at construction."""

    __slots__ = ("root",)

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path_for(self, key: str) -> Path:
        return self.root.joinpath(*check_key(key).split("/"))

    async def put(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        target = self.path_for(key)
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(6)}{PART_SUFFIX}")
        fh = await asyncio.to_thread(_create, tmp)
        size = 0
        buffer: list[bytes] = []
        buffered = 0
        try:
            async for chunk in chunks:
                if not chunk:
                    continue
                buffer.append(chunk)
                buffered += len(chunk)
                size += len(chunk)
                if buffered >= WRITE_BUFFER_BYTES:
                    await asyncio.to_thread(_write, fh, b"".join(buffer))
                    buffer, buffered = [], 0
            await asyncio.to_thread(_finish, fh, b"".join(buffer), tmp, target)
        except BaseException:
            # A thread that is still writing cannot be stopped, but closing our handle after it and
            # unlinking the temp file leaves nothing behind either way.
            await asyncio.shield(asyncio.to_thread(_discard, fh, tmp))
            raise
        return size

    async def open(self, key: str) -> StoredMedia | None:
        path = self.path_for(key)
        try:
            st = await asyncio.to_thread(path.stat)
        except FileNotFoundError:
            return None
        return StoredMedia(key=key, path=path, size=st.st_size, modified=st.st_mtime)

    async def delete(self, key: str) -> bool:
        """Delete a stored object, or an abandoned temp file named by ``older_than``."""
        if not _ENTRY.fullmatch(key):
            raise InvalidKey(f"not a valid media key: {key!r}")
        return await asyncio.to_thread(self._delete_path, self.root.joinpath(*key.split("/")))

    async def older_than(self, cutoff: float) -> list[str]:
        return await asyncio.to_thread(self._scan, cutoff)

    def _delete_path(self, path: Path) -> bool:
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        parent = path.parent
        while parent != self.root and self.root in parent.parents:
            try:
                parent.rmdir()  # only succeeds while empty: the tree does not keep dead folders
            except OSError:
                break
            parent = parent.parent
        return True

    def _scan(self, cutoff: float) -> list[str]:
        if not self.root.is_dir():
            return []
        found: list[str] = []
        for dirpath, _dirs, files in os.walk(self.root):
            for name in files:
                path = Path(dirpath, name)
                with contextlib.suppress(FileNotFoundError):  # deleted while we walked
                    if path.stat().st_mtime < cutoff:
                        found.append(path.relative_to(self.root).as_posix())
        found.sort()
        return found


def _create(tmp: Path) -> IO[bytes]:
    tmp.parent.mkdir(parents=True, exist_ok=True)
    return tmp.open("xb")


def _write(fh: IO[bytes], data: bytes) -> None:
    fh.write(data)


def _finish(fh: IO[bytes], rest: bytes, tmp: Path, target: Path) -> None:
    with fh:
        if rest:
            fh.write(rest)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, target)


def _discard(fh: IO[bytes], tmp: Path) -> None:
    with contextlib.suppress(OSError):
        fh.close()
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
