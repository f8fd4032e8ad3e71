"""SIGTERM through the front door: requests in flight get the shutdown grace, and those still
running when it ends are ended cleanly: a 503 in the dialect's error JSON when no answer had
started, a closed connection when one had; no traceback, no debris, status 0.

The clients are raw sockets, so a test controls exactly how much of a request has been sent.
"""

import json
import re
import signal
import socket
from collections.abc import Callable

import pytest

from tests import loopback
from tests.servers import FileDockServer, wait_until

BOUNDARY = "shutdownboundary"
MiB = 1024 * 1024
FILE_BYTES = 16 * MiB
# What a slow upload sends before it waits: more than one S3 part (8 MiB), so that on S3 too
# the upload has started (a multipart upload) and its abort is tested.
SENT_FIRST = 9 * MiB


def form_head(filename: str, purpose_field: bool) -> bytes:
    """A multipart form up to the first bytes of its `file` part."""
    purpose = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nuser_data\r\n'
    file_part = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: text/plain\r\n\r\n"
    )
    return ((purpose if purpose_field else "") + file_part).encode()


FORM_TAIL = f"\r\n--{BOUNDARY}--\r\n".encode()


class SlowUpload:
    """An upload whose client sends the head of its body, then waits."""

    def __init__(
        self, server: FileDockServer, headers: dict[str, str], *, purpose_field: bool = True
    ) -> None:
        head = form_head("slow.txt", purpose_field)
        self.rest = b"x" * (FILE_BYTES - SENT_FIRST) + FORM_TAIL
        total = len(head) + SENT_FIRST + len(self.rest)
        lines = [
            "POST /v1/files HTTP/1.1",
            f"Host: 127.0.0.1:{server.port}",
            f"Content-Type: multipart/form-data; boundary={BOUNDARY}",
            f"Content-Length: {total}",
            *(f"{name}: {value}" for name, value in headers.items()),
        ]
        self.sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + head + b"x" * SENT_FIRST)

    def finish(self) -> None:
        self.sock.sendall(self.rest)

    def answer(self) -> tuple[str, dict[str, str], bytes]:
        """Status line, headers and body, read until the server closes the connection."""
        status, headers, body = read_head(self.sock)
        return status, headers, body + read_to_end(self.sock)


def read_head(sock: socket.socket) -> tuple[str, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"the connection closed before an answer: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    return status, headers, body


def read_to_end(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(1024 * 1024):
        data += chunk
    return data


def start_stalled_download(server: FileDockServer, file_id: str) -> socket.socket:
    """A download whose client reads the answer's head, then nothing more."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    request = f"GET /v1/files/{file_id}/content HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n\r\n"
    sock.sendall(request.encode())
    return sock


def terminate(server: FileDockServer) -> None:
    assert server.process is not None
    server.process.send_signal(signal.SIGTERM)
    assert wait_until(lambda: "in flight have up to" in server.log_path.read_text(), 10)


def exit_status(server: FileDockServer) -> int:
    assert server.process is not None
    return server.process.wait(timeout=20)  # the grace, the unwinding, and a loaded machine


@pytest.mark.parametrize("workers", ["1", "2"])
def test_requests_running_when_the_grace_ends_get_a_503_or_a_closed_connection(
    make_server: Callable[..., FileDockServer], workers: str
) -> None:
    server = make_server(shutdown_grace_seconds="1", log_level="info", workers=workers)
    big = loopback.post(
        f"{server.openai_url}/files",
        files={"file": ("big.bin", b"b" * (16 * MiB)), "purpose": (None, "user_data")},
        timeout=60,
    ).json()
    blobs_before = server.blob_files()
    openai_upload = SlowUpload(server, {})
    anthropic_upload = SlowUpload(server, {"anthropic-version": "2023-06-01", "x-api-key": "sk-ant"})
    download = start_stalled_download(server, big["id"])
    status, headers, _ = read_head(download)
    assert status.startswith("HTTP/1.1 200") and int(headers["content-length"]) == 16 * MiB
    assert wait_until(lambda: len(server.leftovers()) == 2, 30)  # both uploads are staging bytes

    terminate(server)

    status, headers, body = openai_upload.answer()
    assert status.startswith("HTTP/1.1 503"), (status, body)
    assert headers["connection"] == "close" and headers["retry-after"] == "1"
    assert json.loads(body)["error"]["type"] == "server_error"
    assert "shutting down" in json.loads(body)["error"]["message"]
    status, headers, body = anthropic_upload.answer()
    assert status.startswith("HTTP/1.1 503"), (status, body)
    assert json.loads(body)["type"] == "error" and json.loads(body)["error"]["type"] == "api_error"
    assert len(read_to_end(download)) < 16 * MiB  # the answer was cut short: the connection closed
    assert exit_status(server) == 0

    log = server.log_path.read_text()
    assert "Traceback" not in log and "Exception in ASGI application" not in log
    assert (
        sum(map(int, re.findall(r"ending (\d+) request\(s\) still in flight", log))) == 3
    )  # over the workers
    assert log.count("error=ShuttingDown") == 3  # one access line per request ended
    assert server.leftovers() == [] and server.blob_files() == blobs_before
    server.settings["workers"] = "1"  # enough to list; quicker to start on a loaded machine
    server.start()
    listed = loopback.get(f"{server.openai_url}/files").json()["data"]
    assert [f["id"] for f in listed] == [big["id"]]


def test_a_request_finishing_within_the_grace_succeeds(make_server: Callable[..., FileDockServer]) -> None:
    server = make_server(shutdown_grace_seconds="60", log_level="info")
    upload = SlowUpload(server, {})
    assert wait_until(lambda: len(server.leftovers()) == 1, 30)

    terminate(server)
    refused = wait_until(lambda: not _accepts(server), 10)  # no new connection is taken meanwhile
    upload.finish()

    status, headers, body = upload.answer()
    assert status.startswith("HTTP/1.1 200"), (status, body)
    assert headers["connection"] == "close"
    assert refused
    assert exit_status(server) == 0
    assert "Traceback" not in server.log_path.read_text()
    server.start()
    listed = loopback.get(f"{server.openai_url}/files").json()["data"]
    assert [(f["filename"], f["bytes"]) for f in listed] == [("slow.txt", FILE_BYTES)]


def _accepts(server: FileDockServer) -> bool:
    try:
        socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
    except OSError:
        return False
    return True
