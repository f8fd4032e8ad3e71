"""Blobs as files under one root directory: `<root>/<shard>/<key>`, temporaries in `<root>/tmp`.

A write goes to `tmp/<random>.part`, is fsync'd, then renamed into place, so a reader sees the
whole blob or nothing. Keys are server-made, but each is still resolved inside the root.
"""

import asyncio
import concurrent.futures
import contextlib
import ctypes
import hashlib
import os
import re
import secrets
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import aiofiles.os

from app.blobs.base import BlobInfo, BlobNotFound, BlobStoreError

READ_CHUNK_BYTES = 1024 * 1024
WRITE_BUFFER_BYTES = 1024 * 1024
MAX_PIECES = 512  # below IOV_MAX (1024), the most buffers one writev takes
_KEY = re.compile(r"[A-Za-z0-9_-]{1,128}")
IO_THREADS = 16
ABORT_WAIT_SECONDS = 1.0
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
SYNC_FILE_RANGE_WRITE = 2  # from <fcntl.h>: start writing the range out, wait for nothing
T = TypeVar("T")


def _load_sync_file_range() -> Callable[..., int] | None:
    """Linux's sync_file_range(2) from the C library (Python's os lacks it), or None elsewhere."""
    try:
        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


_sync_file_range = _load_sync_file_range()


def start_writeback(fd: int, start: int, end: int) -> None:
    """Start writing bytes [start, end) of the file to disk, without waiting for it. The blob's
    fsync at commit then finds them written: a 256 MiB upload's answer came 0.14 s after the
    client's last byte, and under 0.02 s this way (docs/performance.md). Only a hint: the fsync
    is what makes the blob durable, so an error here is ignored."""
    if _sync_file_range is not None and end > start:
        _sync_file_range(fd, start, end - start, SYNC_FILE_RANGE_WRITE)


class LocalBlobWriter:
    """Collects pieces into ~1 MiB blocks; a block is written in a thread (writev releases the
    GIL) while the next arrives, keeping the event loop free to parse. When the store fsyncs,
    each block also starts the disk write of the whole pages written so far (`start_writeback`),
    so the disk works during the upload instead of after its last byte.
    """

    def __init__(self, store: "LocalBlobStore", temp_path: Path, fd: int) -> None:
        self._store = store
        self._temp_path = temp_path
        self._fd = fd
        self._pieces: list[bytes] = []  # written as they came, by one writev: no copy into a buffer
        self._buffered = 0
        self._in_flight: concurrent.futures.Future[None] | None = None
        self._written = 0  # bytes handed to block writes so far

    async def write(self, data: bytes) -> None:
        self._pieces.append(data if type(data) is bytes else bytes(data))  # never a buffer that may change
        self._buffered += len(data)
        if self._buffered >= WRITE_BUFFER_BYTES or len(self._pieces) >= MAX_PIECES:
            await self._flush()

    def sha256_hex(self) -> None:
        """Left to after the response: reading the blob back from the page cache costs the
        upload nothing, while hashing on the way takes a core from it."""
        return None

    async def commit(self, key: str) -> None:
        await self._flush()
        await self._wait_in_flight()
        final_path = self._store.path_for(key)
        try:
            if self._store.fsync:
                await self._store.run_io(os.fsync, self._fd)
            os.close(self._fd)
            self._fd = -1
            await aiofiles.os.makedirs(final_path.parent, exist_ok=True)
            await aiofiles.os.replace(self._temp_path, final_path)
            if self._store.fsync:  # make the rename itself survive a power loss
                await self._store.run_io(fsync_path, final_path.parent)
        except OSError as exc:
            self.abort()
            raise BlobStoreError(f"could not store blob {key}: {exc}") from exc

    def abort(self) -> None:
        in_flight = self._in_flight
        if in_flight is not None:
            # A block write takes milliseconds: wait for it, so the temporary file is gone
            # before the caller answers. Only a stalled disk leaves the removal to the thread.
            concurrent.futures.wait([in_flight], timeout=ABORT_WAIT_SECONDS)
        if in_flight is not None and not in_flight.done():
            in_flight.add_done_callback(lambda _: self._close_and_remove())
        else:
            self._close_and_remove()

    def _close_and_remove(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        with contextlib.suppress(FileNotFoundError):
            self._temp_path.unlink()

    async def _flush(self) -> None:
        await self._wait_in_flight()
        if not self._pieces:
            return
        pieces, self._pieces, size, self._buffered = self._pieces, [], self._buffered, 0
        start, self._written = self._written, self._written + size
        # Whole pages only: a page still being filled would go out twice. The block before this
        # one started the pages up to the same boundary this range starts at.
        writeback = (_page_floor(start), _page_floor(self._written)) if self._store.fsync else None
        self._in_flight = self._store.submit_io(_write, self._fd, pieces, writeback)

    async def _wait_in_flight(self) -> None:
        in_flight, self._in_flight = self._in_flight, None
        if in_flight is None:
            return
        try:
            await asyncio.wrap_future(in_flight)
        except OSError as exc:
            raise BlobStoreError(f"could not write blob data: {exc}") from exc


def _page_floor(offset: int) -> int:
    return offset - offset % PAGE_BYTES


def _write(fd: int, pieces: list[bytes], writeback: tuple[int, int] | None) -> None:
    written = os.writev(fd, pieces)
    if written < sum(map(len, pieces)):  # a short write, rare on a regular file: finish plainly
        view = memoryview(b"".join(pieces))[written:]
        while view:
            view = view[os.write(fd, view) :]
    if writeback is not None:
        start_writeback(fd, *writeback)


def _file_sha256(path: Path) -> str:
    with path.open("rb") as blob:
        return hashlib.file_digest(blob, "sha256").hexdigest()


def fsync_path(path: Path) -> None:
    """fsync a file or a directory, by its path."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def blob_path(root: Path, key: str) -> Path:
    """Where the blob `key` lives under `root`: a shard directory named by the key's last two
    characters, so no directory grows past a few thousand entries."""
    return root / key[-2:] / key


class LocalBlobStore:
    def __init__(self, root: Path, *, fsync: bool = True) -> None:
        self.root = root.absolute()
        self.temp_dir = self.root / "tmp"
        self.fsync = fsync
        self.temp_dir.mkdir(parents=True, exist_ok=True)
        # Blob I/O gets its own threads, so a write in flight can be tracked until it ends.
        self._io = concurrent.futures.ThreadPoolExecutor(IO_THREADS, thread_name_prefix="blob-io")

    def submit_io(self, function: Callable[..., None], *args: Any) -> "concurrent.futures.Future[None]":
        return self._io.submit(function, *args)

    async def run_io(self, function: Callable[..., T], *args: Any) -> T:
        return await asyncio.wrap_future(self._io.submit(function, *args))

    def path_for(self, key: str) -> Path:
        if not _KEY.fullmatch(key):
            raise BlobNotFound(key)  # not a key we could have made
        path = blob_path(self.root, key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise BlobNotFound(key)
        return path

    async def writer(self, key: str = "") -> LocalBlobWriter:
        """`key` is where `commit` will put the bytes; a local write does not need it before then."""
        temp_path = self.temp_dir / f"{secrets.token_hex(16)}.part"
        try:
            fd = os.open(temp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as exc:
            raise BlobStoreError(f"could not create a temporary file in {self.temp_dir}: {exc}") from exc
        return LocalBlobWriter(self, temp_path, fd)

    async def open(self, key: str, start: int = 0, end: int | None = None) -> "LocalBlobReader":
        try:
            fd = os.open(self.path_for(key), os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise BlobNotFound(key) from None
        except OSError as exc:
            raise BlobStoreError(f"could not open blob {key}: {exc}") from exc
        if end is None:
            end = os.fstat(fd).st_size
        return LocalBlobReader(self, fd, start, end)

    async def sha256(self, key: str) -> str:
        """The blob's SHA-256, read back in one I/O thread (hashlib releases the GIL): right after
        an upload the bytes are still in the page cache."""
        try:
            return await self.run_io(_file_sha256, self.path_for(key))
        except FileNotFoundError:
            raise BlobNotFound(key) from None
        except OSError as exc:
            raise BlobStoreError(f"could not read blob {key}: {exc}") from exc

    async def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError, BlobNotFound):
            await aiofiles.os.remove(self.path_for(key))

    async def check_writable(self) -> None:
        writer = await self.writer()
        try:
            await writer.write(b"ok")
            await writer.commit("healthcheck")
            await self.delete("healthcheck")
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

    async def list_keys(self, modified_before: float) -> AsyncIterator[str]:
        """Keys of committed blobs last written before `modified_before` (a Unix time)."""
        async for blob in self.list_blobs():
            if blob.modified < modified_before:
                yield blob.key

    async def sizes(self, keys: Sequence[str]) -> dict[str, int]:
        return await asyncio.to_thread(self._sizes, keys)

    def _sizes(self, keys: Sequence[str]) -> dict[str, int]:
        found = {}
        for key in keys:
            try:
                found[key] = os.stat(self.path_for(key)).st_size
            except (FileNotFoundError, BlobNotFound):
                continue
            except OSError as exc:
                raise BlobStoreError(f"could not stat blob {key}: {exc}") from exc
        return found

    async def list_blobs(self) -> AsyncIterator[BlobInfo]:
        """One shard directory at a time: memory holds one shard's listing, not the store's."""
        shards = await asyncio.to_thread(self._shards)
        for shard in shards:
            for info in await asyncio.to_thread(self._scan_shard, shard):
                yield info

    def _shards(self) -> list[str]:
        try:
            with os.scandir(self.root) as entries:
                return sorted(e.path for e in entries if e.is_dir() and e.path != str(self.temp_dir))
        except OSError as exc:
            raise BlobStoreError(f"could not list {self.root}: {exc}") from exc

    def _scan_shard(self, shard: str) -> list[BlobInfo]:
        found = []
        with contextlib.suppress(FileNotFoundError), os.scandir(shard) as entries:
            for entry in entries:
                with contextlib.suppress(FileNotFoundError):
                    if _KEY.fullmatch(entry.name) and entry.is_file():
                        stat = entry.stat()
                        found.append(BlobInfo(entry.name, stat.st_size, stat.st_mtime))
        return found

    async def aclose(self) -> None:
        self._io.shutdown(wait=True)


class LocalBlobReader:
    """Bytes `start` up to `end` of an open blob: iterate for chunks (read in the I/O threads), or
    take `sendfile_range()` to send them zero-copy. The fd is closed when the chunks end or on
    `close()`, whichever comes first; closing twice is harmless.
    """

    def __init__(self, store: LocalBlobStore, fd: int, start: int, end: int) -> None:
        self._store = store
        self._fd = fd
        self._offset = start
        self._end = end
        self._chunks = self._read()

    def sendfile_range(self) -> tuple[int, int, int]:
        """(fd, offset, count) for `os.sendfile`; the caller must `close()` once sent."""
        return self._fd, self._offset, max(0, self._end - self._offset)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __del__(self) -> None:  # a response that never started iterating still frees the fd
        self.close()

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks

    async def __anext__(self) -> bytes:
        return await anext(self._chunks)

    async def _read(self) -> AsyncIterator[bytes]:
        try:
            while self._offset < self._end:
                size = min(READ_CHUNK_BYTES, self._end - self._offset)
                chunk = await self._store.run_io(os.pread, self._fd, size, self._offset)
                if not chunk:
                    return
                self._offset += len(chunk)
                yield chunk
        finally:
            self.close()
