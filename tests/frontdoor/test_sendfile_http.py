"""Downloads over the zero-copy path (`http.response.zerocopysend`): byte-exact, no fd left behind.

On the embedded backend every download below goes through `os.sendfile`; on S3 the same
requests stream, so the byte checks hold for both.
"""

import contextlib
import os
import random
import socket
import struct
import time
from collections.abc import Callable

import httpx
import openai
import pytest

from tests import loopback
from tests.servers import FileDockServer, wait_until

LARGE = os.urandom(24 * 1024 * 1024 + 12345)  # bigger than loopback socket buffers: many EAGAINs


def upload(server: FileDockServer, data: bytes) -> str:
    with openai.OpenAI(base_url=server.openai_url, api_key="k", max_retries=0) as client:
        return client.files.create(file=("s.bin", data), purpose="user_data").id


@pytest.fixture(scope="module")
def large_id(server: FileDockServer) -> str:
    return upload(server, LARGE)


def test_large_file_is_byte_exact_when_read_slowly(server: FileDockServer, large_id: str) -> None:
    received = bytearray()
    with httpx.Client(base_url=server.openai_url, timeout=60) as http:
        with http.stream("GET", f"/files/{large_id}/content") as response:
            assert response.headers["content-length"] == str(len(LARGE))
            for n, chunk in enumerate(response.iter_raw(256 * 1024)):
                received += chunk
                if n % 16 == 0:
                    time.sleep(0.01)  # let the server's socket buffer fill
        assert received == LARGE
        # The connection is reused for the next request after a zero-copy response.
        assert http.get(f"/files/{large_id}/content", headers={"range": "bytes=-3"}).content == LARGE[-3:]


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-0", 0, 1),
        ("bytes=1000000-9999999", 1000000, 10000000),
        (f"bytes={len(LARGE) - 5}-", len(LARGE) - 5, len(LARGE)),
        ("bytes=-4000000", len(LARGE) - 4000000, len(LARGE)),
    ],
)
def test_ranges_of_a_large_file_are_byte_exact(
    http: httpx.Client, large_id: str, header: str, start: int, end: int
) -> None:
    response = http.get(f"/files/{large_id}/content", headers={"range": header})
    assert response.status_code == 206
    assert response.content == LARGE[start:end]


def test_empty_and_small_files(server: FileDockServer, http: httpx.Client) -> None:
    for data in (b"", b"x", os.urandom(70000)):
        file_id = upload(server, data)
        response = http.get(f"/files/{file_id}/content")
        assert response.status_code == 200
        assert response.headers["content-length"] == str(len(data))
        assert response.content == data
        head = http.head(f"/files/{file_id}/content")
        assert (head.status_code, head.content) == (200, b"")


def open_fds(server: FileDockServer) -> list[str]:
    """The server's open files, but for prometheus-client's: the metrics of a request are
    written up to a second after it, and the first write of a kind opens its file for good."""
    assert server.process is not None  # one worker: the served connections live in this process
    directory = f"/proc/{server.process.pid}/fd"
    links = []
    for name in os.listdir(directory):
        with contextlib.suppress(FileNotFoundError):
            links.append(os.readlink(f"{directory}/{name}"))
    return [link for link in links if "/.metrics/" not in link]


@pytest.mark.embedded_only("reads the server's /proc fd table and blob files")
@pytest.mark.parametrize("reset", [False, True], ids=["close", "reset"])
def test_client_disconnect_mid_download_leaves_no_fd(
    make_server: Callable[..., FileDockServer], reset: bool
) -> None:
    server = make_server()
    file_id = upload(server, LARGE)
    [blob] = server.blob_files()
    assert loopback.get(f"{server.openai_url}/files/{file_id}/content").content == LARGE
    baseline = len(open_fds(server))
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", server.port)) as sock:
            sock.sendall(f"GET /v1/files/{file_id}/content HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
            assert wait_until(lambda: str(blob) in open_fds(server))  # the transfer is under way
            if reset:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    assert wait_until(lambda: str(blob) not in open_fds(server) and len(open_fds(server)) <= baseline)
    assert loopback.get(f"{server.openai_url}/files/{file_id}/content").content == LARGE  # still serving


def chunked(request: bytes) -> bytes:
    """`request` (a multipart upload) with its body sent chunked instead of with a length."""
    head, body = request.split(b"\r\n\r\n", 1)
    lines = [line for line in head.split(b"\r\n") if not line.startswith(b"Content-Length")]
    pieces = [body[i : i + 70_000] for i in range(0, len(body), 70_000)]
    framed = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces) + b"0\r\n\r\n"
    return b"\r\n".join([*lines, b"Transfer-Encoding: chunked"]) + b"\r\n\r\n" + framed


def multipart_request(data: bytes, boundary: str = "b0undary") -> bytes:
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nuser_data\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="p.bin"\r\n\r\n'
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    head = (
        f"POST /v1/files HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n\r\n"
    )
    return head.encode() + body


def test_pipelined_uploads_keep_their_bodies(server: FileDockServer, http: httpx.Client) -> None:
    """The request bodies of a queued second request stay whole."""
    first, second = os.urandom(3 * 1024 * 1024 + 7), os.urandom(200_000)
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.settimeout(30)
        sock.sendall(multipart_request(first) + multipart_request(second))
        replies = bytearray()
        while replies.count(b'"status_details"') < 2 and (chunk := sock.recv(65536)):
            replies += chunk
    ids = [part.split(b'"', 1)[0].decode() for part in replies.split(b'"id":"')[1:]]
    assert replies.count(b"HTTP/1.1 200") == 2 and len(ids) == 2, replies
    assert [http.get(f"/files/{i}/content").content for i in ids] == [first, second]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_uploads_on_one_connection_survive_any_cut_of_the_stream(
    server: FileDockServer, http: httpx.Client, seed: int
) -> None:
    """Bodies with a length pass to the app as read (`app.server.passthrough`), chunked ones go
    through the parser: cut anywhere (inside headers, a body, the end of one body and the start
    of the next request), each request on the connection keeps exactly its own bytes."""
    rng = random.Random(seed)
    files = [rng.randbytes(rng.randrange(1, 900_000)) for _ in range(4)]
    stream = b"".join(
        [
            multipart_request(files[0]),
            chunked(multipart_request(files[1])),
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
            multipart_request(files[2]),
            multipart_request(files[3]),
        ]
    )
    cuts = sorted(rng.sample(range(1, len(stream)), 40))
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(30)
        for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
            sock.sendall(stream[start:end])
            time.sleep(0.002)  # most cuts become separate reads on the server
        replies = bytearray()
        while replies.count(b"HTTP/1.1 ") < 5 or replies.count(b'"status_details"') < 4:
            chunk = sock.recv(65536)
            assert chunk, replies
            replies += chunk
    assert replies.count(b"HTTP/1.1 200") == 5, replies
    ids = [part.split(b'"', 1)[0].decode() for part in replies.split(b'"id":"')[1:]]
    assert [http.get(f"/files/{i}/content").content for i in ids] == files
