"""Project quotas on the wire: bytes and file count, in every dialect, released by delete and by
expiry, per project, overridden with `filedock projects set-quota`, and atomic under racing
uploads on a two-worker server (the tenancy contract, issue 7).

Only the standard library, pytest, httpx and tests helpers are imported.
"""

import asyncio
import json
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests import loopback
from tests.frontdoor.tenancy_helpers import (
    QUICK,
    Cli,
    anthropic_auth,
    assert_quota_error,
    blob_names,
    create_openai,
    gemini_auth,
    gemini_chunk,
    gemini_start,
    module_server,
    openai_auth,
    openai_files,
    row_blob_keys,
    to_anthropic_id,
    to_gemini_id,
    upload_anthropic,
    upload_gemini,
    upload_openai,
)
from tests.servers import FileDockServer, wait_until

MAX_BYTES = 1000
MAX_FILES = 4
PROJECTS = [
    "bytes-openai",
    "bytes-anthropic",
    "bytes-gemini",
    "bytes-uploads",
    "count",
    "delete",
    "expiry",
    "full",
    "neighbour",
    "other",
    "override-up",
    "override-down",
    "override-bystander",
    "declared",
]


def key(project: str) -> str:
    return f"sk-{project}"


@pytest.fixture(scope="module")
def quota(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FileDockServer]:
    """Small default quotas; a key per project, so each test fills a project of its own."""
    yield from module_server(
        tmp_path_factory,
        "quota",
        api_keys=",".join(f"{key(p)}={p}" for p in PROJECTS),
        project_max_bytes=str(MAX_BYTES),
        project_max_files=str(MAX_FILES),
        sweep_interval_seconds="0.2",
    )


def assert_nothing_left_behind(server: FileDockServer) -> None:
    """Every blob is named by a row and every row's blob exists; no temporary file lingers."""
    assert wait_until(lambda: blob_names(server) == row_blob_keys(server)), blob_names(
        server
    ) ^ row_blob_keys(server)
    assert wait_until(lambda: not server.leftovers()), server.leftovers()


def assert_blobs_back_to(server: FileDockServer, before: set[str]) -> None:
    """A refused upload left no blob behind: not as a file, not as a part of a session."""
    assert wait_until(lambda: blob_names(server) == before), blob_names(server) - before


def usage(server: FileDockServer, project: str) -> tuple[int, int]:
    """The project's recorded usage: its row, which `filedock projects list` prints (checked against
    the CLI in check_race and test_keys_cli; read here without starting a CLI process per check)."""
    rows = server.sql("SELECT bytes_used, files_used FROM projects WHERE name = ?", project)
    assert len(rows) == 1, f"no row for project {project}"
    bytes_used, files_used = rows[0]
    assert isinstance(bytes_used, int) and isinstance(files_used, int), rows
    return bytes_used, files_used


def used_by_listing(server: FileDockServer, project: str) -> tuple[int, int]:
    files = openai_files(server, key(project))
    return sum(f["bytes"] for f in files), len(files)


# --- bytes ------------------------------------------------------------------------------------


def test_openai_upload_over_the_byte_quota_is_refused(quota: FileDockServer) -> None:
    project = "bytes-openai"
    upload_openai(quota, key(project), b"a" * 600)
    rows_before, blobs_before = len(openai_files(quota, key(project))), blob_names(quota)
    assert_quota_error("openai", upload_openai(quota, key(project), b"b" * 500, expect=None))
    assert len(openai_files(quota, key(project))) == rows_before
    assert_blobs_back_to(quota, blobs_before)
    assert_nothing_left_behind(quota)
    upload_openai(quota, key(project), b"c" * 400)  # exactly fills the quota
    assert_quota_error("openai", upload_openai(quota, key(project), b"d", expect=None))
    assert usage(quota, project) == (1000, 2) == used_by_listing(quota, project)


def test_anthropic_upload_over_the_byte_quota_is_refused(quota: FileDockServer) -> None:
    project = "bytes-anthropic"
    assert upload_anthropic(quota, key(project), b"a" * 900).status_code == 200
    before = blob_names(quota)
    refused = upload_anthropic(quota, key(project), b"b" * 200)
    assert_quota_error("anthropic", refused)
    assert refused.headers.get("x-should-retry") != "true"
    assert usage(quota, project) == (900, 1)
    assert_blobs_back_to(quota, before)
    assert_nothing_left_behind(quota)


def send_head_and_some_body(
    server: FileDockServer, path: str, headers: dict[str, str]
) -> tuple[int, dict[str, str], Any]:
    """POST a form declaring 300 MB, send its first 64 KiB only, and read the answer: it must come
    before the rest of the body, which is never sent."""
    boundary = "quota-boundary"
    head = [
        f"POST {path} HTTP/1.1",
        f"host: 127.0.0.1:{server.port}",
        f"content-type: multipart/form-data; boundary={boundary}",
        f"content-length: {300_000_000}",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    start = f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n\r\n'
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n" + start).encode() + b"x" * 65536)
        answer = b""
        while b"\r\n\r\n" not in answer or len(answer.split(b"\r\n\r\n", 1)[1]) < 20:
            chunk = sock.recv(65536)  # a timeout here: the server waited for the body instead
            if not chunk:
                break
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    header_block, _, body = rest.partition(b"\r\n\r\n")
    fields = dict(line.decode().lower().split(": ", 1) for line in header_block.split(b"\r\n"))
    return int(status_line.split()[1]), fields, json.loads(body[: int(fields["content-length"])])


@pytest.mark.parametrize(
    ("path", "auth"),
    [
        pytest.param("/openai/v1/files", openai_auth, id="openai"),
        pytest.param("/anthropic/v1/files", anthropic_auth, id="anthropic"),
    ],
)
def test_a_form_whose_declared_size_cannot_fit_is_refused_before_its_body(
    quota: FileDockServer, path: str, auth: Callable[[str], dict[str, str]]
) -> None:
    before = blob_names(quota)
    status, headers, body = send_head_and_some_body(quota, path, auth(key("declared")))
    assert status == 400
    assert headers["connection"] == "close"  # the unread body cannot be followed by a request
    assert "Storage limit exceeded for this project" in json.dumps(body)
    assert used_by_listing(quota, "declared") == (0, 0)
    assert_blobs_back_to(quota, before)
    assert_nothing_left_behind(quota)


def test_gemini_upload_over_the_byte_quota_is_refused(quota: FileDockServer) -> None:
    project = "bytes-gemini"
    assert upload_gemini(quota, key(project), b"a" * 900).status_code == 200
    before = blob_names(quota)
    refused = upload_gemini(quota, key(project), b"b" * 200)
    assert_quota_error("gemini", refused)
    assert refused.headers["x-goog-upload-status"] == "final"  # the SDK stops; nobody resumes it
    assert usage(quota, project) == (900, 1)
    assert_blobs_back_to(quota, before)
    assert_nothing_left_behind(quota)


def test_gemini_quota_counts_the_bytes_of_other_dialects(quota: FileDockServer) -> None:
    """An upload that fits when its session starts is still refused if the project filled meanwhile."""
    project = "full"
    started = gemini_start(quota, key(project), 600)
    if started.status_code != 200:  # refusing at start is only allowed when the bytes do not fit
        pytest.fail(f"start of a fitting upload refused: {started.text}")
    upload_openai(quota, key(project), b"x" * 500)
    before = blob_names(quota)
    url = started.headers["x-goog-upload-url"]
    final = gemini_chunk(url, b"g" * 600, 0)
    assert_quota_error("gemini", final)
    assert final.headers["x-goog-upload-status"] == "final"
    assert usage(quota, project) == (500, 1)
    assert_blobs_back_to(quota, before)  # the refused session's bytes are not kept either
    query = loopback.post(url, headers={"x-goog-upload-command": "query"})
    assert query.headers.get("x-goog-upload-status") != "active", query.headers
    assert_nothing_left_behind(quota)


def test_openai_uploads_api_over_the_byte_quota_is_refused(quota: FileDockServer) -> None:
    project = "bytes-uploads"
    upload_openai(quota, key(project), b"a" * 600)
    headers = openai_auth(key(project))
    body = {"bytes": 500, "filename": "big.txt", "mime_type": "text/plain", "purpose": "user_data"}
    created = loopback.post(f"{quota.url}/openai/v1/uploads", headers=headers, json=body)
    if created.status_code == 400:  # refused at create: the declared size does not fit
        assert_quota_error("openai", created)
    else:
        assert created.status_code == 200, created.text
        upload_id = created.json()["id"]
        part = loopback.post(
            f"{quota.url}/openai/v1/uploads/{upload_id}/parts",
            headers=headers,
            files={"data": ("upload", b"b" * 500, "application/octet-stream")},
        )
        if part.status_code == 400:
            assert_quota_error("openai", part)
        else:
            assert part.status_code == 200, part.text
            done = loopback.post(
                f"{quota.url}/openai/v1/uploads/{upload_id}/complete",
                headers=headers,
                json={"part_ids": [part.json()["id"]]},
            )
            assert_quota_error("openai", done)
    assert usage(quota, project) == (600, 1)
    # an Upload that fits completes
    body["bytes"] = 400
    fits = loopback.post(f"{quota.url}/openai/v1/uploads", headers=headers, json=body).json()
    part = loopback.post(
        f"{quota.url}/openai/v1/uploads/{fits['id']}/parts",
        headers=headers,
        files={"data": ("upload", b"c" * 400, "application/octet-stream")},
    ).json()
    done = loopback.post(
        f"{quota.url}/openai/v1/uploads/{fits['id']}/complete",
        headers=headers,
        json={"part_ids": [part["id"]]},
    )
    assert done.status_code == 200, done.text
    assert usage(quota, project) == (1000, 2)


# --- file count -------------------------------------------------------------------------------


def test_file_count_quota_holds_across_dialects(quota: FileDockServer) -> None:
    project = "count"
    for i in range(MAX_FILES):
        upload_openai(quota, key(project), b"x", f"{i}.txt")
    assert_quota_error("openai", upload_openai(quota, key(project), b"y", expect=None))
    assert_quota_error("anthropic", upload_anthropic(quota, key(project), b"y"))
    assert_quota_error("gemini", upload_gemini(quota, key(project), b"y"))
    assert usage(quota, project) == (MAX_FILES, MAX_FILES)
    assert_nothing_left_behind(quota)


# --- release ----------------------------------------------------------------------------------


def test_delete_in_any_dialect_releases_quota(quota: FileDockServer) -> None:
    project = "delete"
    k = key(project)
    full = create_openai(quota, k, b"a" * 1000)
    assert_quota_error("openai", upload_openai(quota, k, b"b", expect=None))
    deleted = loopback.delete(
        f"{quota.url}/anthropic/v1/files/{to_anthropic_id(full['id'])}", headers=anthropic_auth(k)
    )
    assert deleted.status_code == 200, deleted.text
    assert usage(quota, project) == (0, 0)
    again = create_openai(quota, k, b"c" * 1000)
    deleted = loopback.delete(
        f"{quota.url}/gemini/v1beta/files/{to_gemini_id(again['id'])}", headers=gemini_auth(k)
    )
    assert deleted.status_code == 200, deleted.text
    third = create_openai(quota, k, b"d" * 1000)
    loopback.delete(f"{quota.url}/openai/v1/files/{third['id']}", headers=openai_auth(k)).raise_for_status()
    create_openai(quota, k, b"e" * 1000)
    assert usage(quota, project) == (1000, 1)
    assert_nothing_left_behind(quota)


def test_expiry_releases_quota(quota: FileDockServer) -> None:
    project = "expiry"
    k = key(project)
    doomed = create_openai(quota, k, b"a" * 1000)
    assert_quota_error("openai", upload_openai(quota, k, b"b", expect=None))
    changed = quota.sql(
        "UPDATE files SET expires_at = ? WHERE id = ? RETURNING id", int(time.time()) - 1, doomed["id"]
    )
    assert changed == [(doomed["id"],)]
    # the sweeper (every 0.2 s here) removes the row and its blob
    assert wait_until(lambda: not quota.sql("SELECT id FROM files WHERE id = ?", doomed["id"]))
    assert usage(quota, project) == (0, 0)
    create_openai(quota, k, b"c" * 1000)
    assert usage(quota, project) == (1000, 1)
    assert_nothing_left_behind(quota)


def test_expired_file_no_longer_counts_even_before_the_sweeper(
    make_server: Callable[..., FileDockServer],
) -> None:
    """ "Quota counts live files only": an expired file is not live, swept or not (no sweep here)."""
    server = make_server(
        api_keys="sk-lazy=lazy", project_max_bytes="1000", sweep_interval_seconds="3600", **QUICK
    )
    doomed = create_openai(server, "sk-lazy", b"a" * 1000)
    server.sql("UPDATE files SET expires_at = ? WHERE id = ?", int(time.time()) - 1, doomed["id"])
    fresh = upload_openai(server, "sk-lazy", b"b" * 1000, expect=None)
    assert fresh.status_code == 200, fresh.text
    assert openai_files(server, "sk-lazy") == [fresh.json()]
    assert Cli.of(server).projects()["lazy"]["bytes"] == 1000


def test_another_projects_usage_does_not_count(quota: FileDockServer) -> None:
    create_openai(quota, key("neighbour"), b"a" * 1000)
    assert_quota_error("openai", upload_openai(quota, key("neighbour"), b"b", expect=None))
    create_openai(quota, key("other"), b"c" * 1000)  # a full neighbour takes nothing from this one
    assert usage(quota, "neighbour") == (1000, 1)
    assert usage(quota, "other") == (1000, 1)


# --- overrides --------------------------------------------------------------------------------


def test_set_quota_override_raises_and_lowers_the_limit(quota: FileDockServer) -> None:
    cli = Cli.of(quota)
    up, down = key("override-up"), key("override-down")
    create_openai(quota, key("override-bystander"), b"v")
    create_openai(quota, up, b"w" * 1000)
    assert_quota_error("openai", upload_openai(quota, up, b"x", expect=None))
    cli.set_quota("override-up", max_bytes=3000, max_files=10)
    create_openai(quota, up, b"y" * 1500)
    assert_quota_error("openai", upload_openai(quota, up, b"z" * 600, expect=None))
    create_openai(quota, up, b"z" * 500)  # exactly 3000
    create_openai(quota, down, b"a")
    cli.set_quota("override-down", max_files=1)
    assert_quota_error("openai", upload_openai(quota, down, b"b", expect=None))
    projects = cli.projects()
    assert (projects["override-up"]["max_bytes"], projects["override-up"]["max_files"]) == (3000, 10)
    assert projects["override-down"]["max_files"] == 1
    bystander = projects["override-bystander"]
    assert (bystander["max_bytes"], bystander["max_files"]) == (MAX_BYTES, MAX_FILES)


# --- races ------------------------------------------------------------------------------------

RACE_SIZE = 4000
RACERS = 50


@pytest.fixture(scope="module")
def racetrack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FileDockServer]:
    keys = "sk-race-bytes=race-bytes,sk-race-files=race-files,sk-race-mixed=race-mixed"
    yield from module_server(
        tmp_path_factory,
        "race",
        api_keys=keys,
        workers="2",
        project_max_bytes="100000",
        project_max_files="1000",
    )


async def race_upload(
    client: httpx.AsyncClient, k: str, dialect: str, i: int, data: bytes
) -> tuple[str, Any]:
    if dialect == "openai":
        response = await client.post(
            "/openai/v1/files",
            headers=openai_auth(k),
            files={"file": (f"r{i}.txt", data, "text/plain")},
            data={"purpose": "user_data"},
        )
    elif dialect == "anthropic":
        response = await client.post(
            "/anthropic/v1/files",
            headers=anthropic_auth(k),
            files={"file": (f"r{i}.txt", data, "text/plain")},
        )
    else:
        start_headers = {
            "x-goog-upload-protocol": "resumable",
            "x-goog-upload-command": "start",
            "x-goog-upload-header-content-length": str(len(data)),
            "x-goog-upload-header-content-type": "text/plain",
            **gemini_auth(k),
        }
        response = await client.post(
            "/gemini/upload/v1beta/files", headers=start_headers, json={"file": {"displayName": f"r{i}.txt"}}
        )
        if response.status_code == 200:
            response = await client.post(
                response.headers["x-goog-upload-url"],
                headers={"x-goog-upload-command": "upload, finalize", "x-goog-upload-offset": "0"},
                content=data,
            )
    return dialect, response


async def run_race(server: FileDockServer, k: str, dialects: list[str], data: bytes) -> list[tuple[str, Any]]:
    limits = httpx.Limits(max_connections=RACERS, max_keepalive_connections=RACERS)
    async with httpx.AsyncClient(base_url=server.url, timeout=60, limits=limits) as client:
        return await asyncio.gather(*(race_upload(client, k, d, i, data) for i, d in enumerate(dialects)))


def check_race(
    server: FileDockServer, project: str, results: list[tuple[str, Any]], fit: int, before: tuple[int, int]
) -> None:
    winners = [r for _, r in results if r.status_code == 200]
    losers = [(d, r) for d, r in results if r.status_code != 200]
    for dialect, response in losers:
        assert_quota_error(dialect, response)
    assert len(winners) == fit, [r.status_code for _, r in results]
    stored_bytes, stored_files = used_by_listing(server, project)
    assert stored_files == before[1] + fit
    entry = Cli.of(server).projects()[project]  # the operator's view of the race's outcome
    assert (entry["bytes"], entry["files"]) == (stored_bytes, stored_files)
    assert stored_bytes <= entry["max_bytes"] and stored_files <= entry["max_files"]
    assert_nothing_left_behind(server)


def test_racing_uploads_never_overshoot_the_byte_quota(racetrack: FileDockServer) -> None:
    k = "sk-race-bytes"
    create_openai(racetrack, k, b"p" * 60_000)  # 40,000 bytes left: room for ten racers exactly
    results = asyncio.run(run_race(racetrack, k, ["openai"] * RACERS, b"r" * RACE_SIZE))
    check_race(racetrack, "race-bytes", results, fit=10, before=(60_000, 1))
    assert used_by_listing(racetrack, "race-bytes")[0] == 100_000


def test_racing_uploads_never_overshoot_the_file_quota(racetrack: FileDockServer) -> None:
    Cli.of(racetrack).set_quota("race-files", max_files=10)
    k = "sk-race-files"
    create_openai(racetrack, k, b"p")  # room for nine more files
    results = asyncio.run(run_race(racetrack, k, ["openai"] * RACERS, b"f" * 100))
    check_race(racetrack, "race-files", results, fit=9, before=(1, 1))


def test_racing_uploads_of_three_dialects_share_one_quota(racetrack: FileDockServer) -> None:
    k = "sk-race-mixed"
    create_openai(racetrack, k, b"p" * 68_000)  # 32,000 bytes left: room for eight racers
    dialects = [("openai", "anthropic", "gemini")[i % 3] for i in range(RACERS)]
    results = asyncio.run(run_race(racetrack, k, dialects, b"m" * RACE_SIZE))
    check_race(racetrack, "race-mixed", results, fit=8, before=(68_000, 1))
