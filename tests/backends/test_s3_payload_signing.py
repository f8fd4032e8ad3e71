"""On a loopback S3 endpoint FileDock signs requests without hashing their bodies (SigV4's
UNSIGNED-PAYLOAD): the hash would guard the bytes against a network that is not there, and costs
a second SHA-256 pass over every uploaded byte. The requests still reach SeaweedFS signed, and
are accepted. A relay between FileDock and SeaweedFS reads the header off the wire."""

import contextlib
import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests import scaleout
from tests.servers import FileDockServer, clean_environment

PAYLOAD_HASH = re.compile(rb"x-amz-content-sha256: *([^\r\n]+)\r\n", re.IGNORECASE)
LARGE_BYTES = 9 * 1024 * 1024  # past the 8 MiB part size: a multipart upload


class HeaderRelay:
    """Forwards loopback connections to `target`, noting each x-amz-content-sha256 value sent."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.payload_hashes: set[bytes] = set()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self.listener.accept()
                upstream = socket.create_connection(self.target)
                threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
                threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, requests: bool) -> None:
        tail = b""  # the end of the previous read, so a header split across two reads is still seen
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                if requests:
                    self.payload_hashes.update(PAYLOAD_HASH.findall(tail + data))
                    tail = data[-200:]
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self.listener.close()


@pytest.fixture(scope="module")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[scaleout.SeaweedS3]:
    s3 = scaleout.SeaweedS3(tmp_path_factory.mktemp("s3-signing")).start()
    yield s3
    s3.stop()


class S3Server(FileDockServer):
    def environment(self) -> dict[str, str]:
        env = clean_environment(log_level="warning", workers="1", **self.settings)
        env.update(scaleout.S3_CREDENTIALS)
        return env


def test_s3_uploads_on_loopback_send_unsigned_payloads(seaweed: scaleout.SeaweedS3, tmp_path: Path) -> None:
    relay = HeaderRelay(("127.0.0.1", seaweed.port))
    settings = {
        "blob_url": f"s3://{seaweed.bucket}/signing",
        "s3_endpoint_url": f"http://127.0.0.1:{relay.port}",
    }
    server = S3Server(tmp_path / "data", settings=settings)
    server.start()
    large = bytes(range(256)) * (LARGE_BYTES // 256)
    try:
        with httpx.Client(base_url=server.openai_url, timeout=60) as http:
            for name, body in (("small.txt", b"small"), ("large.bin", large)):
                created = http.post("/files", data={"purpose": "user_data"}, files={"file": (name, body)})
                assert created.status_code == 200, created.text
                content = http.get(f"/files/{created.json()['id']}/content").raise_for_status().content
                assert content == body
    finally:
        server.stop()
        relay.close()
    assert relay.payload_hashes == {b"UNSIGNED-PAYLOAD"}
