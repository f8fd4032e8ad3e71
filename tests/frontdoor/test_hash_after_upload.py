"""A file's SHA-256 is computed after its upload's response: until then a download has no `ETag`
and Gemini's File no `sha256Hash`; once known, both appear and never change. A row left without
its hash (the server stopped first) is hashed by the next maintenance round, at the latest
right after a restart; `filedock verify --deep` hashes it too.

Rows are made "not hashed yet" deterministically by setting `sha256` to NULL in the database,
as a server killed right after an upload would leave them.
"""

import base64
import hashlib
import os
import signal
from collections.abc import Callable

import httpx
import pytest

from tests import loopback
from tests.frontdoor.tenancy_helpers import QUICK, Cli, gemini_chunk, gemini_start
from tests.servers import FileDockServer, wait_until

PAYLOAD = os.urandom(300_000)
SHA256 = hashlib.sha256(PAYLOAD).hexdigest()
ETAG = f'"{SHA256}"'
GEMINI_HASH = base64.b64encode(SHA256.encode()).decode()
NO_ROUNDS = {**QUICK, "sweep_interval_seconds": "3600"}  # only the round at start-up runs


@pytest.fixture
def quiet_server(make_server: Callable[..., FileDockServer]) -> FileDockServer:
    return make_server(**NO_ROUNDS)


def upload(server: FileDockServer, data: bytes = PAYLOAD) -> str:
    response = loopback.post(
        f"{server.openai_url}/files",
        files={"file": ("h.bin", data)},
        data={"purpose": "user_data"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def content(server: FileDockServer, file_id: str, **headers: str) -> httpx.Response:
    return loopback.get(f"{server.openai_url}/files/{file_id}/content", headers=headers, timeout=30)


def etag_known(server: FileDockServer, file_id: str) -> bool:
    return "etag" in content(server, file_id).headers


def stored_hash(server: FileDockServer, file_id: str) -> object:
    [(digest,)] = server.sql("SELECT COALESCE(sha256, 'unknown') FROM files WHERE id = ?", file_id)
    return digest


def forget_hash(server: FileDockServer, file_id: str) -> None:
    """What a server killed right after the upload leaves: the row, durable, with no hash."""
    assert wait_until(lambda: etag_known(server, file_id))  # the background hash has finished
    server.sql("UPDATE files SET sha256 = NULL WHERE id = ?", file_id)


def test_a_download_right_after_the_upload_has_the_true_etag_or_none(server: FileDockServer) -> None:
    file_id = upload(server)
    response = content(server, file_id)
    assert response.content == PAYLOAD
    assert response.headers.get("etag", ETAG) == ETAG


def test_the_etag_appears_and_is_the_sha256(server: FileDockServer) -> None:
    file_id = upload(server)
    assert wait_until(lambda: etag_known(server, file_id))
    assert content(server, file_id).headers["etag"] == ETAG
    assert loopback.head(f"{server.openai_url}/files/{file_id}/content").headers["etag"] == ETAG


def test_a_file_not_hashed_yet_has_no_validator(quiet_server: FileDockServer) -> None:
    file_id = upload(quiet_server)
    forget_hash(quiet_server, file_id)
    response = content(quiet_server, file_id)
    assert (response.status_code, response.content) == (200, PAYLOAD)
    assert "etag" not in response.headers
    assert content(quiet_server, file_id, **{"if-none-match": ETAG}).status_code == 200


# Ids, not the values: PAYLOAD is random, and xdist needs every process to collect the same ids.
@pytest.mark.parametrize("validator", [ETAG, '"stale"'], ids=["true-etag", "stale-etag"])
def test_if_range_before_the_hash_is_known_sends_the_whole_file(
    quiet_server: FileDockServer, validator: str
) -> None:
    file_id = upload(quiet_server)
    forget_hash(quiet_server, file_id)
    response = content(quiet_server, file_id, range="bytes=10-19", **{"if-range": validator})
    assert (response.status_code, response.content) == (200, PAYLOAD)


def test_a_range_without_if_range_is_served_before_the_hash_is_known(quiet_server: FileDockServer) -> None:
    file_id = upload(quiet_server)
    forget_hash(quiet_server, file_id)
    response = content(quiet_server, file_id, range="bytes=10-19")
    assert (response.status_code, response.content) == (206, PAYLOAD[10:20])


def test_gemini_sha256hash_appears_once_known(quiet_server: FileDockServer) -> None:
    file_id = upload(quiet_server)
    forget_hash(quiet_server, file_id)
    [name] = _gemini_names(quiet_server)
    assert "sha256Hash" not in _gemini_get(quiet_server, name)
    quiet_server.sql("UPDATE files SET sha256 = ? WHERE id = ?", SHA256, file_id)
    assert _gemini_get(quiet_server, name)["sha256Hash"] == GEMINI_HASH


def test_a_gemini_resumable_upload_gets_its_hash_after_the_final_response(server: FileDockServer) -> None:
    started = gemini_start(server, None, len(PAYLOAD))
    url = started.headers["x-goog-upload-url"]
    assert gemini_chunk(url, PAYLOAD[:100_000], 0, "upload").status_code == 200
    final = gemini_chunk(url, PAYLOAD[100_000:], 100_000).json()["file"]
    assert final.get("sha256Hash", GEMINI_HASH) == GEMINI_HASH  # the hash, or none yet
    assert wait_until(lambda: "sha256Hash" in _gemini_get(server, final["name"]))
    assert _gemini_get(server, final["name"])["sha256Hash"] == GEMINI_HASH


def test_an_openai_upload_completion_gets_its_hash(server: FileDockServer) -> None:
    body = {"filename": "u.bin", "bytes": len(PAYLOAD), "purpose": "user_data", "mime_type": "application/x"}
    upload_id = loopback.post(f"{server.openai_url}/uploads", json=body).json()["id"]
    parts = [
        loopback.post(f"{server.openai_url}/uploads/{upload_id}/parts", files={"data": piece}).json()["id"]
        for piece in (PAYLOAD[:150_000], PAYLOAD[150_000:])
    ]
    done = loopback.post(f"{server.openai_url}/uploads/{upload_id}/complete", json={"part_ids": parts}).json()
    file_id = done["file"]["id"]
    assert wait_until(lambda: etag_known(server, file_id))
    response = content(server, file_id)
    assert (response.headers["etag"], response.content) == (ETAG, PAYLOAD)


def test_a_row_left_without_its_hash_is_hashed_after_a_restart(quiet_server: FileDockServer) -> None:
    file_id = upload(quiet_server)
    forget_hash(quiet_server, file_id)
    quiet_server.restart()  # the round at start-up takes the backlog
    assert wait_until(lambda: etag_known(quiet_server, file_id))
    assert stored_hash(quiet_server, file_id) == SHA256


def test_an_upload_killed_before_its_hash_is_hashed_after_a_restart(quiet_server: FileDockServer) -> None:
    file_id = upload(quiet_server, PAYLOAD * 30)  # 9 MB: the hash may not have run yet
    quiet_server.stop(signal.SIGKILL)
    quiet_server.start()
    expected = f'"{hashlib.sha256(PAYLOAD * 30).hexdigest()}"'
    assert wait_until(lambda: etag_known(quiet_server, file_id))
    assert content(quiet_server, file_id).headers["etag"] == expected


def test_verify_deep_hashes_a_row_without_its_hash(quiet_server: FileDockServer) -> None:
    file_id = upload(quiet_server)
    forget_hash(quiet_server, file_id)
    cli = Cli.of(quiet_server)
    assert "no problems" in cli.run("verify").stdout
    assert stored_hash(quiet_server, file_id) == "unknown"
    deep = cli.run("verify", "--deep").stdout
    assert "no problems" in deep and "1 files not hashed yet were hashed" in deep
    assert stored_hash(quiet_server, file_id) == SHA256


def _gemini_names(server: FileDockServer) -> list[str]:
    files = loopback.get(f"{server.url}/gemini/v1beta/files", params={"pageSize": 100}).json()["files"]
    return [f["name"] for f in files]


def _gemini_get(server: FileDockServer, name: str) -> dict[str, str]:
    response = loopback.get(f"{server.url}/gemini/v1beta/{name}")
    assert response.status_code == 200, response.text
    resource: dict[str, str] = response.json()
    return resource
