"""When FileDock asks obstore to skip SigV4's payload hash: only where it would protect nothing."""

import pytest

from app.blobs.s3 import payload_signing_is_redundant


@pytest.mark.parametrize(
    "endpoint",
    ["", "https://s3.example.com", "http://127.0.0.1:9000", "http://127.8.0.1:9000", "http://localhost:9000",
     "http://minio.localhost:9000", "http://[::1]:9000"],
)  # fmt: skip
def test_payload_signing_is_redundant_over_https_and_loopback(endpoint: str) -> None:
    assert payload_signing_is_redundant(endpoint)


@pytest.mark.parametrize(
    "endpoint", ["http://10.0.0.5:9000", "http://minio:9000", "http://s3.example.com", "http://192.168.1.2"]
)
def test_payload_signing_is_kept_over_plain_http_on_a_network(endpoint: str) -> None:
    assert not payload_signing_is_redundant(endpoint)
