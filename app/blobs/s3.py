"""Blobs as objects in an S3 bucket (AWS, MinIO, SeaweedFS), through obstore.

A blob is written under its final key and becomes visible only when the write completes: a
small blob is one PUT, a large one a multipart upload fed chunk by chunk (memory stays at a
few parts per upload), and S3 makes either visible atomically. A process killed mid-write
leaves at worst an unfinished multipart upload, which no listing or GET ever shows; a bucket
lifecycle rule (AbortIncompleteMultipartUpload) reclaims its parts. Reads are ranged GETs;
a large one from a plain-HTTP endpoint goes through `app/blobs/s3_reads.py` instead of obstore.

Two obstore clients: writes, HEAD, DELETE and LIST have a whole-request timeout; reads have
only a connect timeout plus a wait for each chunk, since a slow client may take hours to
download a large file. obstore's errors become `BlobNotFound` or `BlobStoreError` in
`_translated`, the one place that knows them.
"""

import asyncio
import atexit
import contextlib
import hashlib
import ipaddress
import logging
import re
import secrets
import sys
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import obstore
from obstore.exceptions import BaseError, NotFoundError
from obstore.store import S3Store

if TYPE_CHECKING:  # obstore's config types exist only for type checkers
    from obstore.store import ClientConfig, RetryConfig, S3Config

from app.blobs import s3_reads
from app.blobs.base import BlobInfo, BlobNotFound, BlobStoreError

log = logging.getLogger("filedock.blobs.s3")
PART_BYTES = 8 * 1024 * 1024  # a blob up to this size is one PUT; larger ones go multipart
PARTS_IN_FLIGHT = 2
QUEUED_CHUNKS = 8
# A read through obstore (a small one, one over HTTPS, or of a whole blob for its hash or a batch)
# takes the object in chunks of at least this size, each one hand-off from obstore's thread to
# the event loop and one write into the client's socket. A 256 MiB download through
# FileDock against obstore's own get (Intel Xeon, 2 cores): 1 MiB chunks 0.72x with 0.22 s of
# server CPU, 2 MiB 0.83x, 4 MiB 0.86x with 0.16 s, 8 MiB 0.74x (docs/performance.md).
READ_CHUNK_BYTES = 4 * 1024 * 1024
LIST_PAGE = 1000
HEADS_IN_FLIGHT = 16
HEALTH_PREFIX = "_health/"
_KEY = re.compile(r"[A-Za-z0-9_-]{1,128}")
# obstore hands each result back from a thread of its own (tokio's), which calls the event
# loop's `call_soon_threadsafe` and so needs the GIL once more after the awaiting coroutine has
# resumed. A process that exits in that moment (a CLI command's last DELETE) begins finalizing
# first, and before Python 3.14 a thread asking for the GIL then is ended by `pthread_exit`,
# which aborts the whole process as it unwinds through Rust: SIGABRT, nothing on stderr
# (PyO3/pyo3#4874, python/cpython#87135). atexit callbacks run before finalizing begins.
EXIT_GRACE_SECONDS = 0.05


@atexit.register
def _let_obstore_threads_finish() -> None:
    """Give up the GIL for a moment, so that obstore's threads finish handing results back."""
    if sys.version_info < (3, 14):
        time.sleep(EXIT_GRACE_SECONDS)


@contextlib.contextmanager
def _translated(key: str) -> Iterator[None]:
    """obstore's errors, and timeouts, as the blob store's two errors."""
    try:
        yield
    except (NotFoundError, FileNotFoundError):
        raise BlobNotFound(key) from None
    except (BaseError, OSError, TimeoutError, RuntimeError, ValueError) as exc:
        raise BlobStoreError(f"S3 request for {key} failed: {type(exc).__name__}: {exc}") from exc


class _Aborted(Exception):
    """Raised inside the chunk stream so obstore gives up the multipart upload."""


_ABANDONED: set["asyncio.Task[Any]"] = set()  # aborted uploads still winding down
_END = b""  # queued after the last chunk (a real chunk is never empty: `write` skips those)
_ABORT = bytearray()  # queued by `abort`; told apart from `_END` by identity


class S3BlobWriter:
    """Buffers up to one part; past that, streams parts to a multipart upload in a task."""

    def __init__(self, store: "S3BlobStore", key: str) -> None:
        self._store = store
        self._key = key
        self._buffer = bytearray()
        # Hashed on the way: reading the object back after the response would send every byte
        # across the network (and through the S3 server) a second time.
        self._sha256 = hashlib.sha256()
        self._queue: asyncio.Queue[bytes | bytearray] = asyncio.Queue(QUEUED_CHUNKS)
        self._upload: asyncio.Task[Any] | None = None

    async def write(self, data: bytes) -> None:
        if not data:
            return
        self._sha256.update(data)
        if self._upload is None:
            self._buffer += data
            if len(self._buffer) >= PART_BYTES:
                first, self._buffer = bytes(self._buffer), bytearray()
                self._upload = asyncio.create_task(self._store.put_stream(self._key, self._chunks(first)))
                self._upload.add_done_callback(_retrieve)
            return
        await self._send(data)

    def sha256_hex(self) -> str:
        return self._sha256.hexdigest()

    async def commit(self, key: str) -> None:
        if key != self._key:
            raise ValueError(f"this writer was opened for blob {self._key}, not {key}")
        if self._upload is None:
            await self._store.put_bytes(key, bytes(self._buffer))
            return
        await self._send(_END)
        with _translated(key):
            await self._upload

    def abort(self) -> None:
        upload = self._upload
        if upload is None or upload.done():
            return
        _ABANDONED.add(upload)  # the loop holds tasks weakly: keep this one until obstore has let go
        upload.add_done_callback(_ABANDONED.discard)
        while not self._queue.empty():
            self._queue.get_nowait()
        try:
            self._queue.put_nowait(_ABORT)  # the stream raises, and obstore drops the upload
        except asyncio.QueueFull:
            upload.cancel()

    async def _chunks(self, first: bytes) -> AsyncIterator[bytes]:
        yield first
        while True:
            chunk = await self._queue.get()
            if chunk is _ABORT:
                raise _Aborted(self._key)
            if chunk is _END:
                return
            yield bytes(chunk)

    async def _send(self, chunk: bytes) -> None:
        """Queue a chunk for the upload task, unless that task has already failed."""
        assert self._upload is not None
        if self._upload.done():
            with _translated(self._key):
                self._upload.result()
            raise BlobStoreError(f"the upload of {self._key} has already ended")
        put = asyncio.ensure_future(self._queue.put(chunk))
        await asyncio.wait({put, self._upload}, return_when=asyncio.FIRST_COMPLETED)
        if not put.done():
            put.cancel()
            with _translated(self._key):
                self._upload.result()
            raise BlobStoreError(f"the upload of {self._key} ended early")


def _retrieve(task: "asyncio.Task[Any]") -> None:
    """Mark a failed upload's exception as seen; the writer reports it (or was aborted)."""
    if not task.cancelled():
        task.exception()


def needs_path_style(endpoint_url: str) -> bool:
    """Whether buckets must be addressed as <endpoint>/<bucket>: on an IP address or `localhost`,
    where virtual-hosted style (<bucket>.<host>) names no host that could answer."""
    host = urlparse(endpoint_url).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def payload_signing_is_redundant(endpoint_url: str) -> bool:
    """Whether signing each request body's SHA-256 (SigV4's signed payload) protects nothing:
    over HTTPS, TLS already guards the bytes (AWS documents UNSIGNED-PAYLOAD for it), and
    on a loopback endpoint there is no network to tamper with them. It costs a second SHA-256
    pass over every uploaded byte, inside obstore. Empty: AWS's own endpoint, always HTTPS."""
    parts = urlparse(endpoint_url)
    if not endpoint_url or parts.scheme == "https":
        return True
    host = parts.hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class S3BlobStore:
    def __init__(
        self,
        bucket: str,
        prefix: str,
        *,
        endpoint_url: str = "",
        region: str = "",
        force_path_style: bool | None = None,
        timeout_seconds: float = 30.0,
    ) -> None:
        if force_path_style is None:
            force_path_style = needs_path_style(endpoint_url)
        self.path_style = force_path_style
        config: S3Config = {"virtual_hosted_style_request": not force_path_style}
        if payload_signing_is_redundant(endpoint_url):
            config["unsigned_payload"] = True  # unset otherwise: AWS_UNSIGNED_PAYLOAD still applies
        if endpoint_url:
            config["endpoint"] = endpoint_url
        if region:
            config["region"] = region
        connect: ClientConfig = {"connect_timeout": timedelta(seconds=min(timeout_seconds, 10))}
        if endpoint_url.startswith("http://"):
            connect["allow_http"] = True
        retry: RetryConfig = {
            "max_retries": 2,
            "backoff": {
                "init_backoff": timedelta(milliseconds=100),
                "max_backoff": timedelta(seconds=2),
                "base": 2,
            },
            "retry_timeout": timedelta(seconds=timeout_seconds),
        }
        store_prefix = prefix.strip("/") or None
        whole: ClientConfig = {**connect, "timeout": timedelta(seconds=timeout_seconds)}
        self._store = S3Store(
            bucket, prefix=store_prefix, config=config, client_options=whole, retry_config=retry
        )
        self._reads = S3Store(
            bucket, prefix=store_prefix, config=config, client_options=connect, retry_config=retry
        )
        self._plain_reads = s3_reads.PlainReads(self._reads, timeout_seconds)
        self.timeout_seconds = timeout_seconds
        self.description = f"s3://{bucket}/{prefix.strip('/')}"

    async def writer(self, key: str = "") -> S3BlobWriter:
        return S3BlobWriter(self, key or secrets.token_hex(12))

    async def put_bytes(self, key: str, data: bytes) -> None:
        with _translated(key):
            await obstore.put_async(self._store, key, data, use_multipart=False)

    async def put_stream(self, key: str, chunks: AsyncIterator[bytes]) -> None:
        with _translated(key):
            await obstore.put_async(
                self._store,
                key,
                chunks,
                use_multipart=True,
                chunk_size=PART_BYTES,
                max_concurrency=PARTS_IN_FLIGHT,
            )

    async def open(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        if not _KEY.fullmatch(key):
            raise BlobNotFound(key)
        if end is not None and end <= start:
            with _translated(key):
                await asyncio.wait_for(obstore.head_async(self._store, key), self.timeout_seconds)
            return _empty()
        if end is not None and end - start >= s3_reads.MIN_BYTES:
            chunks = await self._plain_reads.open_range(key, start, end)
            if chunks is not None:
                return chunks
        options: Any = {}
        if end is not None:
            options = {"range": (start, end)}
        elif start:
            options = {"range": {"offset": start}}
        with _translated(key):
            result = await asyncio.wait_for(
                obstore.get_async(self._reads, key, options=options), self.timeout_seconds
            )
        return self._stream(key, result.stream(min_chunk_size=READ_CHUNK_BYTES))

    async def _stream(self, key: str, chunks: Any) -> AsyncIterator[bytes]:
        while True:
            with _translated(key):
                try:
                    chunk = await asyncio.wait_for(chunks.__anext__(), self.timeout_seconds)
                except StopAsyncIteration:
                    return
            yield bytes(chunk)

    async def sha256(self, key: str) -> str:
        """The blob's SHA-256, streamed back: each chunk is hashed in a thread, off the event loop."""
        digest = hashlib.sha256()
        async for chunk in await self.open(key):
            await asyncio.to_thread(digest.update, chunk)
        return digest.hexdigest()

    async def delete(self, key: str) -> None:
        with contextlib.suppress(BlobNotFound), _translated(key):
            await obstore.delete_async(self._store, key)

    async def list_keys(self, modified_before: float) -> AsyncIterator[str]:
        """Keys of committed blobs last written before `modified_before` (a Unix time)."""
        async for blob in self.list_blobs():
            if blob.modified < modified_before:
                yield blob.key

    async def sizes(self, keys: Sequence[str]) -> dict[str, int]:
        """One HEAD per key, `HEADS_IN_FLIGHT` at a time."""
        gate = asyncio.Semaphore(HEADS_IN_FLIGHT)

        async def size_of(key: str) -> int | None:
            if not _KEY.fullmatch(key):
                return None
            async with gate:
                try:
                    with _translated(key):
                        meta = await asyncio.wait_for(
                            obstore.head_async(self._store, key), self.timeout_seconds
                        )
                except BlobNotFound:
                    return None
            return int(meta["size"])

        found = await asyncio.gather(*(size_of(key) for key in keys))
        return {key: size for key, size in zip(keys, found, strict=True) if size is not None}

    async def list_blobs(self) -> AsyncIterator[BlobInfo]:
        stream = obstore.list(self._store, chunk_size=LIST_PAGE)
        while True:
            with _translated("(listing)"):
                try:
                    page = await asyncio.wait_for(stream.__anext__(), self.timeout_seconds)
                except StopAsyncIteration:
                    return
            for meta in page:
                if _KEY.fullmatch(meta["path"]):
                    yield BlobInfo(meta["path"], int(meta["size"]), meta["last_modified"].timestamp())

    async def check_writable(self) -> None:
        key = HEALTH_PREFIX + secrets.token_hex(8)
        await self.put_bytes(key, b"ok")
        await self.delete(key)

    async def remove_stale_temporaries(self, idle_seconds: float) -> int:
        """Nothing to do: an unfinished write is an invisible multipart upload (see the docstring)."""
        return 0

    async def aclose(self) -> None:
        # Aborted uploads are still telling S3 to drop their parts (a shutdown ends uploads in
        # flight): wait for them, so no unfinished multipart upload outlives the process.
        if _ABANDONED:
            await asyncio.wait(set(_ABANDONED), timeout=self.timeout_seconds)
        self._plain_reads.close()


async def _empty() -> AsyncIterator[bytes]:
    return
    yield  # an async generator that yields nothing
