"""On a loopback S3 endpoint FileDock signs requests without hashing their bodies (SigV4's
UNSIGNED-PAYLOAD): the hash would guard the bytes against a network that is not there, and costs
a second SHA-256 pass over every uploaded byte. The requests still reach SeaweedFS signed, and
are accepted. A relay between FileDock and SeaweedFS reads the header off the wire."""

import re
from pathlib import Path

import httpx

from tests import scaleout
from tests.backends.relay import Relay
from tests.servers import S3Server

PAYLOAD_HASH = re.compile(rb"x-amz-content-sha256: *([^\r\n]+)\r\n", re.IGNORECASE)
LARGE_BYTES = 9 * 1024 * 1024  # past the 8 MiB part size: a multipart upload


def test_s3_uploads_on_loopback_send_unsigned_payloads(seaweed: scaleout.SeaweedS3, tmp_path: Path) -> None:
    relay = Relay(("127.0.0.1", seaweed.port), watch=PAYLOAD_HASH)
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
    assert relay.seen == {b"UNSIGNED-PAYLOAD"}
