"""Large reads from an S3 endpoint over plain HTTP: a URL presigned by obstore, fetched with the
standard library's `http.client` in threads.

Why not through obstore, which does every other S3 request: its stream hands each chunk over as
a new `bytes` that it first zeroes and then fills (developmentseed/obstore#133), after the copies
of its own HTTP stack, while `HTTPResponse.read(n)` has the kernel copy the socket's bytes
straight into a new, unzeroed `bytes`. Where the CPU is the bound (a store on the same host or
network: SeaweedFS, MinIO), that took a 256 MiB download through FileDock from 0.75-0.82x to
0.83-0.91x of obstore's own get, relaying every byte to the client (docs/performance.md).

Only plain HTTP without a proxy: HTTPS (its trust store) and proxies stay with obstore.
`open_range` answers None, and the caller reads through obstore instead, whenever this path
cannot be sure before the body that it got exactly the bytes asked for (no signature, a status
or range other than the one requested: obstore then retries, or names the error, as for any
other read). A connection that fails or stays silent is `BlobStoreError` at once, within the
store's timeout, as is any failure once the body has begun: the response is then under way.
"""

import asyncio
import concurrent.futures
import contextlib
import functools
import http.client
import logging
import re
import socket
import urllib.request
from collections.abc import AsyncIterator
from datetime import timedelta
from urllib.parse import urlsplit

import obstore
from obstore.exceptions import BaseError
from obstore.store import S3Store

from app.blobs.base import BlobStoreError

log = logging.getLogger("filedock.blobs.s3")
MIN_BYTES = 4 * 1024 * 1024  # below this, one of obstore's pooled connections costs less
CHUNK_BYTES = 1024 * 1024  # one read, one hand-off to the event loop, one write to the client
URL_LIFETIME = timedelta(minutes=15)  # S3 checks it once, when the request arrives
THREADS = 16  # reads in flight at once, per process; a download holds one only while it reads
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


class PlainReads:
    """Opens large ranged reads over plain HTTP; the threads that block on their sockets."""

    def __init__(self, store: S3Store, timeout_seconds: float, threads: int = THREADS) -> None:
        self._store = store
        self._timeout = timeout_seconds
        self._threads = concurrent.futures.ThreadPoolExecutor(threads, thread_name_prefix="s3-read")

    def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)

    async def open_range(self, key: str, start: int, end: int) -> AsyncIterator[bytes] | None:
        """Bytes `start` up to `end` of the object `key` in chunks, or None: read it through obstore."""
        try:
            url = urlsplit(await obstore.sign_async(self._store, "GET", key, URL_LIFETIME))
        except BaseError:
            return None
        if url.scheme != "http" or not url.hostname or _proxied(url.hostname):
            return None
        connection = http.client.HTTPConnection(url.hostname, url.port, timeout=self._timeout)
        request = functools.partial(_request, connection, f"{url.path}?{url.query}", start, end)
        try:
            response, sock = await asyncio.get_running_loop().run_in_executor(self._threads, request)
        except BaseException as exc:  # cancelled too (the client left): that wakes the thread
            _close(connection, connection.sock)
            if isinstance(exc, (OSError, http.client.HTTPException)):
                raise BlobStoreError(f"S3 request for {key} failed: {type(exc).__name__}: {exc}") from exc
            raise
        if not _is_exactly(response, start, end):
            log.debug("S3 answered %s to a range of %s; reading it through obstore", response.status, key)
            _close(connection, sock, response)
            return None
        return self._chunks(key, connection, sock, response, end - start)

    async def _chunks(
        self,
        key: str,
        connection: http.client.HTTPConnection,
        sock: socket.socket,
        response: http.client.HTTPResponse,
        size: int,
    ) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        left = size
        try:
            while left:
                try:
                    chunk = await loop.run_in_executor(self._threads, response.read, min(CHUNK_BYTES, left))
                except (OSError, http.client.HTTPException) as exc:
                    raise BlobStoreError(f"S3 read of {key} failed: {type(exc).__name__}: {exc}") from exc
                if not chunk:  # http.client ends a short body quietly when asked for a size
                    raise BlobStoreError(f"S3 read of {key} ended {left} bytes early")
                left -= len(chunk)
                yield chunk
        finally:
            _close(connection, sock, response)


def _proxied(host: str) -> bool:
    """Whether the environment names a proxy for HTTP to `host`: this path speaks to S3 directly."""
    return "http" in urllib.request.getproxies_environment() and not urllib.request.proxy_bypass(host)


def _request(
    connection: http.client.HTTPConnection, target: str, start: int, end: int
) -> tuple[http.client.HTTPResponse, socket.socket]:
    """The response, and its socket: an HTTP/1.0 answer moves it from the connection to the response."""
    connection.request("GET", target, headers={"Range": f"bytes={start}-{end - 1}"})
    sock = connection.sock
    assert sock is not None  # request() connected it
    return connection.getresponse(), sock


def _is_exactly(response: http.client.HTTPResponse, start: int, end: int) -> bool:
    """Whether the response's body is bytes `start` up to `end` of the object, and only those."""
    if response.getheader("content-encoding", "identity") != "identity" or response.length != end - start:
        return False
    if response.status == 200:
        return start == 0  # the whole object, which is as long as asked
    found = _CONTENT_RANGE.fullmatch(response.getheader("content-range", ""))
    return response.status == 206 and found is not None and (int(found[1]), int(found[2])) == (start, end - 1)


def _close(
    connection: http.client.HTTPConnection,
    sock: socket.socket | None,
    response: http.client.HTTPResponse | None = None,
) -> None:
    """Closes the connection and its response (which owns the socket after an HTTP/1.0 answer),
    first waking a thread blocked reading it (closing alone does not)."""
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
    connection.close()
    if response is not None:
        response.close()
