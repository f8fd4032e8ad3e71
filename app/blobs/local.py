"""Blobs as files under one root directory: `<root>/<shard>/<key>`, temporaries in `<root>/tmp`.

A write goes to `tmp/<random>.part`, is fsync'd, then renamed into place, so a reader sees the
whole blob or nothing. Keys are server-made, but each is still resolved inside the root.
"""

import asyncio
import contextlib
import os
import re
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiofiles
import aiofiles.os
from aiofiles.threadpool.binary import AsyncBufferedReader

from app.blobs.base import BlobNotFound, BlobStoreError

READ_CHUNK_BYTES = 1024 * 1024
WRITE_BUFFER_BYTES = 1024 * 1024
_KEY = re.compile(r"[A-Za-z0-9_-]{1,128}")


class LocalBlobWriter:
    def __init__(self, store: "LocalBlobStore", temp_path: Path, fd: int) -> None:
        self._store = store
        self._temp_path = temp_path
        self._fd = fd
        self._buffer = bytearray()

    async def write(self, data: bytes) -> None:
        self._buffer += data
        if len(self._buffer) >= WRITE_BUFFER_BYTES:
            await self._flush()

    async def commit(self, key: str) -> None:
        await self._flush()
        final_path = self._store.path_for(key)
        try:
            if self._store.fsync:
                await asyncio.to_thread(os.fsync, self._fd)
            os.close(self._fd)
            self._fd = -1
            await aiofiles.os.makedirs(final_path.parent, exist_ok=True)
            await aiofiles.os.replace(self._temp_path, final_path)
        except OSError as exc:
            self.abort()
            raise BlobStoreError(f"could not store blob {key}: {exc}") from exc

    def abort(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        with contextlib.suppress(FileNotFoundError):
            self._temp_path.unlink()

    async def _flush(self) -> None:
        if not self._buffer:
            return
        data, self._buffer = bytes(self._buffer), bytearray()
        try:
            await asyncio.to_thread(_write_all, self._fd, data)
        except OSError as exc:
            raise BlobStoreError(f"could not write blob data: {exc}") from exc


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class LocalBlobStore:
    def __init__(self, root: Path, *, fsync: bool = True) -> None:
        self.root = root.absolute()
        self.temp_dir = self.root / "tmp"
        self.fsync = fsync
        self.temp_dir.mkdir(parents=True, exist_ok=True)

    def path_for(self, key: str) -> Path:
        if not _KEY.fullmatch(key):
            raise BlobNotFound(key)  # not a key we could have made
        path = (self.root / key[-2:] / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise BlobNotFound(key)
        return path

    async def writer(self) -> LocalBlobWriter:
        temp_path = self.temp_dir / f"{secrets.token_hex(16)}.part"
        try:
            fd = os.open(temp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as exc:
            raise BlobStoreError(f"could not create a temporary file in {self.temp_dir}: {exc}") from exc
        return LocalBlobWriter(self, temp_path, fd)

    async def open(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        try:
            handle = await aiofiles.open(self.path_for(key), "rb")
        except FileNotFoundError:
            raise BlobNotFound(key) from None
        except OSError as exc:
            raise BlobStoreError(f"could not open blob {key}: {exc}") from exc
        return _read_range(handle, start, end)

    async def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError, BlobNotFound):
            await aiofiles.os.remove(self.path_for(key))

    async def check_writable(self) -> None:
        writer = await self.writer()
        try:
            await writer.write(b"ok")
            await writer._flush()
        finally:
            writer.abort()

    async def remove_stale_temporaries(self, idle_seconds: float) -> int:
        return await asyncio.to_thread(self._remove_stale_temporaries, idle_seconds)

    def _remove_stale_temporaries(self, idle_seconds: float) -> int:
        cutoff = time.time() - idle_seconds
        removed = 0
        for entry in os.scandir(self.temp_dir):
            with contextlib.suppress(FileNotFoundError):
                if entry.stat().st_mtime < cutoff:
                    os.unlink(entry.path)
                    removed += 1
        return removed

    async def aclose(self) -> None:
        return None


async def _read_range(handle: AsyncBufferedReader, start: int, end: int | None) -> AsyncIterator[bytes]:
    try:
        if start:
            await handle.seek(start)
        remaining = None if end is None else end - start
        while remaining is None or remaining > 0:
            size = READ_CHUNK_BYTES if remaining is None else min(READ_CHUNK_BYTES, remaining)
            chunk = await handle.read(size)
            if not chunk:
                return
            if remaining is not None:
                remaining -= len(chunk)
            yield chunk
    finally:
        await handle.close()
