"""Large S3 reads over plain HTTP (app/blobs/s3_reads.py), against a small S3 of the test's own on
a loopback port that answers each way a real one might: the exact range, something else, nothing."""

import asyncio
import contextlib
import http.server
import os
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from obstore.store import S3Store

from app.blobs.base import BlobStoreError
from app.blobs.s3_reads import CHUNK_BYTES, MIN_BYTES, PlainReads

DATA = os.urandom(MIN_BYTES + CHUNK_BYTES + 12345)


class FakeS3(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.answer = "range"  # or "whole", "missing", "short", "trickle"
        self.targets: list[str] = []
        self.disconnected = threading.Event()


class _Handler(http.server.BaseHTTPRequestHandler):
    server: FakeS3

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.targets.append(self.path)
        answer = self.server.answer
        if answer == "missing":
            self._send(404, b"<Error><Code>NoSuchKey</Code></Error>", {})
            return
        first, last = (int(n) for n in self.headers["Range"].removeprefix("bytes=").split("-"))
        if answer == "whole":
            self._send(200, DATA, {})
            return
        body = DATA[first : last + 1]
        headers = {"Content-Range": f"bytes {first}-{last}/{len(DATA)}"}
        if answer == "short":
            self._send(206, body, headers, sent=len(body) // 2)
            self.close_connection = True
            return
        try:
            self._send(206, body, headers, pause=answer == "trickle")
        except OSError:
            self.server.disconnected.set()

    def _send(
        self, status: int, body: bytes, headers: dict[str, str], sent: int | None = None, pause: bool = False
    ) -> None:
        self.send_response(status)
        for name, value in {**headers, "Content-Length": str(len(body))}.items():
            self.send_header(name, value)
        self.end_headers()
        if pause:  # one chunk, then the rest slowly, so the reader can walk away midway
            self.wfile.write(body[:CHUNK_BYTES])
            for start in range(CHUNK_BYTES, len(body), 65536):
                time.sleep(0.5)
                self.wfile.write(body[start : start + 65536])
            return
        self.wfile.write(body[:sent])


@pytest.fixture(autouse=True)
def no_proxy_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy", "REQUEST_METHOD"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def fake_s3() -> Iterator[FakeS3]:
    server = FakeS3()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def _reads(endpoint: str, timeout: float = 5) -> PlainReads:
    store = S3Store(
        "bucket",
        prefix="pre",
        config={
            "endpoint": endpoint,
            "region": "us-east-1",
            "access_key_id": "test",
            "secret_access_key": "test-secret",
            "virtual_hosted_style_request": False,
        },
        client_options={"allow_http": True},
    )
    return PlainReads(store, timeout, threads=2)


def _endpoint(server: FakeS3) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


async def _read_all(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in chunks])


async def test_a_large_range_comes_through_a_presigned_url_in_chunks(fake_s3: FakeS3) -> None:
    reads = _reads(_endpoint(fake_s3))
    chunks = await reads.open_range("blob1", 3, len(DATA) - 5)
    assert chunks is not None
    sizes = [len(chunk) async for chunk in chunks]
    assert sizes[0] == CHUNK_BYTES and sum(sizes) == len(DATA) - 8
    chunks = await reads.open_range("blob1", 3, len(DATA) - 5)
    assert chunks is not None and await _read_all(chunks) == DATA[3:-5]
    assert fake_s3.targets[0].startswith("/bucket/pre/blob1?")
    assert "X-Amz-Signature=" in fake_s3.targets[0]
    reads.close()


async def test_anything_but_the_exact_range_is_left_to_obstore(fake_s3: FakeS3) -> None:
    reads = _reads(_endpoint(fake_s3))
    for answer in ("whole", "missing"):
        fake_s3.answer = answer
        assert await reads.open_range("blob1", 7, len(DATA)) is None, answer
    fake_s3.answer = "whole"
    whole = await reads.open_range("blob1", 0, len(DATA))  # from 0, a 200 is the range asked
    assert whole is not None and await _read_all(whole) == DATA
    reads.close()


async def test_a_body_cut_short_is_an_error_not_a_short_blob(fake_s3: FakeS3) -> None:
    fake_s3.answer = "short"
    reads = _reads(_endpoint(fake_s3))
    chunks = await reads.open_range("blob1", 0, len(DATA) - 1)
    assert chunks is not None
    with pytest.raises(BlobStoreError, match="early"):
        await _read_all(chunks)
    reads.close()


async def test_https_endpoints_stay_with_obstore() -> None:
    reads = _reads("https://127.0.0.1:9")  # nothing listens: no connection may be tried
    assert await reads.open_range("blob1", 0, len(DATA)) is None
    reads.close()


async def test_a_proxied_endpoint_stays_with_obstore(
    fake_s3: FakeS3, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    reads = _reads(_endpoint(fake_s3))
    assert await reads.open_range("blob1", 0, len(DATA)) is None
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # the proxy is bypassed for this host
    chunks = await reads.open_range("blob1", 0, len(DATA))
    assert chunks is not None and await _read_all(chunks) == DATA
    assert len(fake_s3.targets) == 1
    reads.close()


async def test_a_silent_s3_is_an_error_within_the_timeout() -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never answers
        reads = _reads(f"http://127.0.0.1:{silent.getsockname()[1]}", timeout=0.5)
        started = time.monotonic()
        with pytest.raises(BlobStoreError, match="timed out"):
            await reads.open_range("blob1", 0, len(DATA))
        assert time.monotonic() - started < 5
        reads.close()


async def test_a_download_cancelled_before_s3_answers_closes_the_connection_at_once() -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:
        reads = _reads(f"http://127.0.0.1:{silent.getsockname()[1]}", timeout=30)
        opening = asyncio.ensure_future(reads.open_range("blob1", 0, len(DATA)))
        accepted, _ = await asyncio.to_thread(silent.accept)
        with accepted:
            await asyncio.sleep(0.3)  # the request is out; a thread waits for the answer
            opening.cancel()  # as when the client goes away
            with contextlib.suppress(asyncio.CancelledError):
                await opening
            accepted.settimeout(5)  # the close must come long before the 30 s timeout
            received = await asyncio.to_thread(_everything_until_closed, accepted)
        assert received.startswith(b"GET /bucket/pre/blob1?")
        reads.close()


def _everything_until_closed(connection: socket.socket) -> bytes:
    received = b""
    while chunk := connection.recv(65536):
        received += chunk
    return received


async def test_a_download_cancelled_midway_closes_the_connection_at_once(fake_s3: FakeS3) -> None:
    fake_s3.answer = "trickle"
    reads = _reads(_endpoint(fake_s3), timeout=30)
    chunks = await reads.open_range("blob1", 0, len(DATA))
    assert chunks is not None
    iterator = aiter(chunks)
    assert len(await anext(iterator)) == CHUNK_BYTES
    blocked = asyncio.ensure_future(anext(iterator))  # a thread now waits on the trickle
    await asyncio.sleep(0.3)
    started = time.monotonic()
    blocked.cancel()  # as when the client goes away
    with contextlib.suppress(asyncio.CancelledError):
        await blocked
    assert time.monotonic() - started < 2  # the thread's read was woken, not waited out
    assert fake_s3.disconnected.wait(5)  # S3's side saw the close, long before the 30 s timeout
    reads.close()
