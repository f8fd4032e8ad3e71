"""When PostgreSQL or S3 stops answering, requests get a prompt 503 with Retry-After, never a hang.

A replica reaches both services through a TCP relay that the test can turn into a black hole
(connections accepted, nothing ever answered): the worst kind of outage, with no error to see.
"""

import time
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from tests import loopback
from tests.backends.relay import Relay
from tests.servers import FileDockServer

TIMEOUT_SECONDS = 2


@pytest.fixture
def relayed(
    replicas: Callable[..., FileDockServer], scaleout_settings: dict[str, str]
) -> Iterator[Callable[[str], tuple[FileDockServer, Relay]]]:
    relays: list[Relay] = []

    def start(service: str) -> tuple[FileDockServer, Relay]:
        """A replica that reaches `service` ("postgres" or "s3") through a relay."""
        settings = dict(scaleout_settings, storage_timeout_seconds=str(TIMEOUT_SECONDS))
        key = "database_url" if service == "postgres" else "s3_endpoint_url"
        url = urlsplit(settings[key])
        relay = Relay((url.hostname or "127.0.0.1", url.port or 0))
        relays.append(relay)
        settings[key] = url._replace(netloc=url.netloc.replace(f":{url.port}", f":{relay.port}")).geturl()
        return replicas(**settings), relay

    yield start
    for relay in relays:
        relay.close()


def assert_prompt_503(response: httpx.Response, started: float) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "1"
    assert response.json()["error"]["message"]
    assert time.monotonic() - started < TIMEOUT_SECONDS * 6


def test_silent_database_gives_a_prompt_503(relayed: Callable[[str], tuple[FileDockServer, Relay]]) -> None:
    server, relay = relayed("postgres")
    relay.black_hole = True
    started = time.monotonic()
    response = loopback.get(f"{server.openai_url}/files", timeout=60)
    assert_prompt_503(response, started)
    relay.black_hole = False


def test_silent_s3_gives_a_prompt_503_on_upload_and_download(
    relayed: Callable[[str], tuple[FileDockServer, Relay]],
) -> None:
    server, relay = relayed("s3")
    made = loopback.post(
        f"{server.openai_url}/files", data={"purpose": "user_data"}, files={"file": ("a.txt", b"abc")}
    )
    assert made.status_code == 200, made.text
    large = loopback.post(  # read over plain HTTP, not through obstore (app/blobs/s3_reads.py)
        f"{server.openai_url}/files", data={"purpose": "user_data"}, files={"file": ("c.bin", bytes(5 << 20))}
    )
    assert large.status_code == 200, large.text
    relay.black_hole = True
    started = time.monotonic()
    upload = loopback.post(
        f"{server.openai_url}/files",
        data={"purpose": "user_data"},
        files={"file": ("b.txt", b"xyz")},
        timeout=60,
    )
    assert_prompt_503(upload, started)
    started = time.monotonic()
    download = loopback.get(f"{server.openai_url}/files/{made.json()['id']}/content", timeout=60)
    assert_prompt_503(download, started)
    started = time.monotonic()
    download = loopback.get(f"{server.openai_url}/files/{large.json()['id']}/content", timeout=60)
    assert_prompt_503(download, started)
    relay.black_hole = False
    listed = loopback.get(f"{server.openai_url}/files").json()["data"]
    assert sorted(f["filename"] for f in listed) == ["a.txt", "c.bin"]  # the failed upload left no row
