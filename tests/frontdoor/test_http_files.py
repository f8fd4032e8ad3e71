"""The files API on the wire, with raw httpx, sockets and curl (spec §2, §5, §6 and §8).

Only the standard library, pytest, httpx and tests.servers are used: this file also runs from
the openai 2.x virtual environment, which does not have FileDock installed.
"""

import asyncio
import http.client
import json
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import loopback
from tests.servers import FileDockServer, wait_until

BOUNDARY = "filedock-test-boundary"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"
FORM_OVERHEAD_BYTES = 1024 * 1024  # what the server allows around a file for multipart framing
Part = tuple[str, str | None, bytes]  # (name, filename or None for a text field, content)


def multipart(*parts: Part) -> bytes:
    """A multipart/form-data body with the parts in the given order, as any client may send it."""
    body = b""
    for name, filename, content in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        body += f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n".encode()
        if filename:
            body += b"Content-Type: application/octet-stream\r\n"
        body += b"\r\n" + content + b"\r\n"
    return body + f"--{BOUNDARY}--\r\n".encode()


def upload(http: httpx.Client, *parts: Part) -> httpx.Response:
    return http.post("/files", content=multipart(*parts), headers={"content-type": MULTIPART})


def create(http: httpx.Client, name: str = "a.txt", content: bytes = b"x", purpose: str = "user_data") -> Any:
    response = upload(http, ("purpose", None, purpose.encode()), ("file", name, content))
    assert response.status_code == 200, response.text
    return response.json()


def openai_error(response: httpx.Response, status: int) -> dict[str, Any]:
    """The `error` object of an OpenAI error response, after checking its status and shape."""
    assert response.status_code == status, response.text
    assert response.headers["x-request-id"].startswith("req_")
    assert response.headers["content-type"] == "application/json"
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str) and error["message"]
    return error


# One worker and no fsync: these servers start fast, and nothing here is about durability or scale.
QUICK = {"fsync": "false", "workers": "1"}


def private_server(factory: pytest.TempPathFactory, name: str, **settings: str) -> Iterator[FileDockServer]:
    server = FileDockServer(factory.mktemp(name) / "data", {**QUICK, **settings}).start()
    yield server
    server.stop()


def client_for(server: FileDockServer, **headers: str) -> httpx.Client:
    return httpx.Client(base_url=server.openai_url, timeout=30, headers=headers)


@pytest.fixture(scope="module")
def limited_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FileDockServer]:
    yield from private_server(tmp_path_factory, "limited", max_file_bytes="1000", max_batch_file_bytes="500")


@pytest.fixture
def limited(limited_server: FileDockServer) -> Iterator[httpx.Client]:
    with client_for(limited_server) as raw:
        yield raw


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FileDockServer]:
    yield from private_server(tmp_path_factory, "keyed", api_keys="secret")


@pytest.fixture(scope="module")
def vendor_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FileDockServer]:
    yield from private_server(tmp_path_factory, "vendor", download_policy="vendor")


def set_expires_at(server: FileDockServer, file_id: str, expires_at: int) -> None:
    """Arrange an expiry directly in the server's database (no test clock exists)."""
    changed = server.sql("UPDATE files SET expires_at = ? WHERE id = ? RETURNING id", expires_at, file_id)
    assert changed == [(file_id,)]


def row_count(server: FileDockServer, file_id: str) -> int:
    return int(str(server.sql("SELECT count(*) FROM files WHERE id = ?", file_id)[0][0]))


# --- errors a client can trigger -------------------------------------------------------------

FILE = ("file", "a.txt", b"x")
PURPOSE = ("purpose", None, b"user_data")


@pytest.mark.parametrize(
    ("method", "path", "request_args", "status", "param"),
    [
        pytest.param(
            "POST",
            "/files",
            {"content": multipart(FILE), "headers": {"content-type": MULTIPART}},
            400,
            "purpose",
            id="missing-purpose",
        ),
        pytest.param(
            "POST",
            "/files",
            {"content": multipart(PURPOSE), "headers": {"content-type": MULTIPART}},
            400,
            "file",
            id="missing-file-part",
        ),
        pytest.param(
            "POST",
            "/files",
            {"content": multipart(("purpose", None, b""), FILE), "headers": {"content-type": MULTIPART}},
            400,
            "purpose",
            id="empty-purpose",
        ),
        pytest.param("POST", "/files", {"json": {"purpose": "user_data"}}, 415, None, id="json-body"),
        pytest.param("POST", "/files", {}, 415, None, id="no-body"),
        pytest.param(
            "POST",
            "/files",
            {"content": multipart(PURPOSE, FILE), "headers": {"content-type": "multipart/form-data"}},
            400,
            None,
            id="multipart-without-boundary",
        ),
        pytest.param(
            "POST",
            "/files",
            {"content": multipart(PURPOSE, FILE)[:-30], "headers": {"content-type": MULTIPART}},
            400,
            None,
            id="truncated-multipart",
        ),
        pytest.param(
            "POST",
            "/files",
            {"content": b"not multipart at all", "headers": {"content-type": MULTIPART}},
            400,
            None,
            id="garbage-multipart",
        ),
        pytest.param("GET", "/files?limit=0", {}, 400, None, id="limit-0"),
        pytest.param("GET", "/files?limit=10001", {}, 400, None, id="limit-10001"),
        pytest.param("GET", "/files?limit=abc", {}, 400, None, id="limit-abc"),
        pytest.param("GET", "/files?limit=-1", {}, 400, None, id="limit-negative"),
        pytest.param("GET", "/files?limit=%C2%B2", {}, 400, None, id="limit-superscript-digit"),
        pytest.param("GET", "/files?limit=" + "1" * 5000, {}, 400, None, id="limit-5000-digits"),
        pytest.param("GET", "/files?order=sideways", {}, 400, None, id="order-sideways"),
        pytest.param("GET", "/files?after=file-neverissued", {}, 404, "after", id="after-never-issued"),
        pytest.param("GET", "/files/file-doesnotexist", {}, 404, "id", id="retrieve-unknown"),
        pytest.param("DELETE", "/files/file-doesnotexist", {}, 404, "id", id="delete-unknown"),
        pytest.param("GET", "/files/file-doesnotexist/content", {}, 404, "id", id="content-unknown"),
        pytest.param("GET", "/filez", {}, 404, None, id="unknown-route"),
        pytest.param("PUT", "/files", {}, 404, None, id="wrong-method"),
    ],
)
def test_client_errors_are_openai_error_json(
    http: httpx.Client, method: str, path: str, request_args: dict[str, Any], status: int, param: str | None
) -> None:
    error = openai_error(http.request(method, path, **request_args), status)
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param


def test_missing_purpose_has_code_missing_required_parameter(http: httpx.Client) -> None:
    error = openai_error(upload(http, FILE), 400)
    assert (error["code"], error["message"]) == (
        "missing_required_parameter",
        "Missing required parameter: 'purpose'.",
    )


def test_missing_file_part_has_code_missing_required_parameter(http: httpx.Client) -> None:
    error = openai_error(upload(http, PURPOSE), 400)
    assert (error["code"], error["message"]) == (
        "missing_required_parameter",
        "Missing required parameter: 'file'.",
    )


@pytest.mark.parametrize(
    ("method", "path"),
    [
        pytest.param("GET", "/v1/filez", id="unknown-route"),
        pytest.param("PUT", "/v1/files", id="wrong-method-on-list"),
        pytest.param("POST", "/v1/files/file-abc", id="wrong-method-on-file"),
        pytest.param("GET", "/", id="root"),
    ],
)
def test_unknown_route_is_404_invalid_url(server: FileDockServer, method: str, path: str) -> None:
    response = loopback.request(method, server.url + path)
    assert openai_error(response, 404)["message"] == f"Invalid URL ({method} {path})"


@pytest.mark.parametrize(
    "file_id",
    [
        pytest.param("file-x' OR '1'='1", id="sql-quote"),
        pytest.param("file-1; DROP TABLE files; --", id="sql-drop"),
        pytest.param("..%2F..%2Ffiledock.db", id="encoded-traversal"),
        pytest.param("%2E%2E", id="encoded-dot-dot"),
        pytest.param("file-%00", id="nul"),
        pytest.param("file-" + "a" * 5000, id="very-long"),
        pytest.param("fïle-ünïcode", id="unicode"),
        pytest.param("*", id="wildcard"),
    ],
)
@pytest.mark.parametrize("suffix", [pytest.param("", id="retrieve"), pytest.param("/content", id="content")])
def test_hostile_file_ids_are_404(server: FileDockServer, file_id: str, suffix: str) -> None:
    # Built as a raw URL so httpx neither re-encodes nor normalises the id.
    response = loopback.get(f"{server.openai_url}/files/{file_id}{suffix}")
    assert openai_error(response, 404)["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    "file_id",
    [
        pytest.param("file-x' OR '1'='1", id="sql-quote"),
        pytest.param("..%2F..%2Ffiledock.db", id="encoded-traversal"),
        pytest.param("%25", id="percent"),
    ],
)
def test_hostile_file_ids_delete_nothing(server: FileDockServer, http: httpx.Client, file_id: str) -> None:
    kept = create(http)
    openai_error(loopback.delete(f"{server.openai_url}/files/{file_id}"), 404)
    assert http.get(f"/files/{kept['id']}").status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [
        pytest.param("GET", "/files", id="list"),
        pytest.param("GET", "/files/{id}", id="retrieve"),
        pytest.param("GET", "/files/{id}/content", id="content"),
        pytest.param("DELETE", "/files/{id}", id="delete"),
    ],
)
def test_successful_responses_carry_a_request_id(http: httpx.Client, method: str, path: str) -> None:
    created = create(http)
    response = http.request(method, path.format(id=created["id"]))
    assert response.status_code == 200
    assert response.headers["x-request-id"].startswith("req_")


def test_request_ids_are_unique(http: httpx.Client) -> None:
    ids = {http.get("/files", params={"limit": 1}).headers["x-request-id"] for _ in range(5)}
    assert len(ids) == 5


# --- listing parameters ------------------------------------------------------------------------


def test_list_empty_query_values_are_treated_as_absent(http: httpx.Client) -> None:
    newest = create(http)
    response = http.get("/files?after=&purpose=&order=&limit=")
    assert response.status_code == 200, response.text
    assert response.json()["data"][0]["id"] == newest["id"]


def test_list_empty_page_has_null_first_and_last_ids(http: httpx.Client) -> None:
    page = http.get("/files", params={"purpose": "no-such-purpose"}).json()
    assert page == {"object": "list", "data": [], "first_id": None, "last_id": None, "has_more": False}


def test_list_after_the_last_file_is_an_empty_page_not_a_404(http: httpx.Client) -> None:
    newest = create(http)
    response = http.get("/files", params={"after": newest["id"], "order": "asc"})
    assert response.status_code == 200, response.text
    assert response.json()["data"] == []


# --- downloads ------------------------------------------------------------------------------------


def test_content_has_content_length(http: httpx.Client) -> None:
    created = create(http, "len.bin", b"0123456789")
    assert http.get(f"/files/{created['id']}/content").headers["content-length"] == "10"


@pytest.mark.parametrize(
    ("name", "mime"),
    [
        pytest.param("notes.txt", "text/plain", id="txt"),
        pytest.param("doc.pdf", "application/pdf", id="pdf"),
        pytest.param("data.bin", "application/octet-stream", id="bin"),
        pytest.param("upload", "application/octet-stream", id="no-extension"),
    ],
)
def test_content_type_comes_from_the_stored_name(http: httpx.Client, name: str, mime: str) -> None:
    created = create(http, name)
    content_type = http.get(f"/files/{created['id']}/content").headers["content-type"]
    assert content_type.split(";")[0] == mime


def test_content_disposition_uses_rfc6266_filename_star_for_unicode(http: httpx.Client) -> None:
    created = create(http, "données ✓.txt")
    disposition = http.get(f"/files/{created['id']}/content").headers["content-disposition"]
    assert disposition.startswith('attachment; filename="')
    assert "filename*=UTF-8''donn%C3%A9es%20%E2%9C%93.txt" in disposition


def test_content_disposition_is_plain_for_ascii_names(http: httpx.Client) -> None:
    created = create(http, "plain.txt")
    disposition = http.get(f"/files/{created['id']}/content").headers["content-disposition"]
    assert disposition == 'attachment; filename="plain.txt"'


def test_content_is_marked_nosniff(http: httpx.Client) -> None:
    created = create(http, "page.html", b"<script>alert(1)</script>")
    assert http.get(f"/files/{created['id']}/content").headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    "accept",
    [
        pytest.param("application/binary", id="sdk-content"),
        pytest.param("application/json", id="sdk-retrieve-content"),
        pytest.param("*/*", id="curl"),
        pytest.param("text/html", id="browser"),
    ],
)
def test_content_ignores_accept(http: httpx.Client, accept: str) -> None:
    created = create(http, "a.bin", b"\x00\x01bytes")
    response = http.get(f"/files/{created['id']}/content", headers={"accept": accept})
    assert (response.status_code, response.content) == (200, b"\x00\x01bytes")


def test_content_is_also_served_under_openai_v1(server: FileDockServer, http: httpx.Client) -> None:
    created = create(http, "a.bin", b"mounted twice")
    response = loopback.get(f"{server.url}/openai/v1/files/{created['id']}/content")
    assert (response.status_code, response.content) == (200, b"mounted twice")


# --- the upload form ---------------------------------------------------------------------------


def test_delete_with_json_content_type_and_no_body(http: httpx.Client) -> None:
    created = create(http)
    response = http.delete(f"/files/{created['id']}", headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text
    assert response.json() == {"id": created["id"], "object": "file", "deleted": True}


def test_expires_after_as_one_json_field(http: httpx.Client) -> None:
    expires_after = json.dumps({"anchor": "created_at", "seconds": 3600}).encode()
    response = upload(http, PURPOSE, ("expires_after", None, expires_after), FILE)
    created = response.json()
    assert created["expires_at"] == created["created_at"] + 3600


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(b"not json", id="not-json"),
        pytest.param(b"[3600]", id="array"),
        pytest.param(b'{"anchor": "created_at", "seconds": 60}', id="too-short"),
    ],
)
def test_expires_after_json_field_invalid_is_400(http: httpx.Client, value: bytes) -> None:
    error = openai_error(upload(http, PURPOSE, ("expires_after", None, value), FILE), 400)
    assert error["param"].startswith("expires_after")


def test_file_part_before_purpose_is_accepted_for_user_data(http: httpx.Client) -> None:
    response = upload(http, ("file", "first.txt", b"early"), PURPOSE)
    assert response.status_code == 200, response.text
    assert response.json()["filename"] == "first.txt"


def chunked(body: bytes, size: int = 7) -> Iterator[bytes]:
    """The body as a generator: httpx then streams it with `transfer-encoding: chunked`, as
    openai-node does."""
    for start in range(0, len(body), size):
        yield body[start : start + size]


def test_file_part_before_purpose_is_accepted_for_batch(http: httpx.Client) -> None:
    # openai-node 5.x+ writes parts in the key order of `{file, purpose}`, streamed chunked.
    body = multipart(("file", "b.jsonl", b'{"a": 1}\n{"b": 2}\n'), ("purpose", None, b"batch"))
    response = http.post("/files", content=chunked(body), headers={"content-type": MULTIPART})
    assert response.status_code == 200, response.text
    assert (response.json()["purpose"], response.json()["bytes"]) == ("batch", 18)
    assert http.get(f"/files/{response.json()['id']}/content").content == b'{"a": 1}\n{"b": 2}\n'


def test_file_part_before_purpose_still_gets_the_content_check(
    server: FileDockServer, http: httpx.Client
) -> None:
    blobs_before = server.blob_files()
    body = multipart(("file", "b.jsonl", b'{"a": 1}\nnot json\n'), ("purpose", None, b"batch"))
    response = http.post("/files", content=chunked(body), headers={"content-type": MULTIPART})
    assert "line 2 is not valid JSON" in openai_error(response, 400)["message"]
    assert server.leftovers() == []
    assert server.blob_files() == blobs_before  # the kept blob was removed again


def test_file_part_before_purpose_is_checked_for_extension(http: httpx.Client) -> None:
    response = upload(http, ("file", "b.json", b"{}\n"), ("purpose", None, b"batch"))
    assert openai_error(response, 400)["message"] == "Invalid file format for Batch API. Must be .jsonl"


@pytest.mark.parametrize("name", ["data.csv", "Sheet.XLSX", "plot.png", "bundle.zip", "main.go", "notes.md"])
def test_assistants_takes_file_search_and_code_interpreter_formats(http: httpx.Client, name: str) -> None:
    response = upload(http, ("purpose", None, b"assistants"), ("file", name, b"x"))
    assert response.status_code == 200, response.text
    assert response.json()["purpose"] == "assistants"


def test_two_file_parts_are_400(server: FileDockServer, http: httpx.Client) -> None:
    response = upload(http, PURPOSE, ("file", "a.txt", b"a"), ("file", "b.txt", b"b"))
    assert openai_error(response, 400)["param"] == "file"
    assert server.leftovers() == []


def test_unknown_form_fields_are_ignored(http: httpx.Client) -> None:
    response = upload(http, PURPOSE, ("colour", None, b"blue"), FILE)
    assert response.status_code == 200, response.text


def test_file_part_without_filename_is_named_upload(http: httpx.Client) -> None:
    nameless = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"\r\n\r\nnameless\r\n'
    body = multipart(PURPOSE).replace(f"--{BOUNDARY}--".encode(), f"{nameless}--{BOUNDARY}--".encode())
    response = http.post("/files", content=body, headers={"content-type": MULTIPART})
    assert (response.status_code, response.json()["filename"]) == (200, "upload")


def test_filename_star_is_decoded(http: httpx.Client) -> None:
    body = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nuser_data\r\n'
        f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename*=UTF-8''%E2%9C%93.txt\r\n"
        f"\r\nx\r\n--{BOUNDARY}--\r\n"
    ).encode()
    response = http.post("/files", content=body, headers={"content-type": MULTIPART})
    assert response.json()["filename"] == "✓.txt"


# --- size limits --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("purpose", "name", "size"),
    [
        pytest.param("user_data", "big.bin", 1001, id="global-limit"),
        pytest.param("batch", "big.jsonl", 501, id="batch-limit"),
    ],
)
def test_upload_over_the_limit_is_400_file_too_large(
    limited_server: FileDockServer, limited: httpx.Client, purpose: str, name: str, size: int
) -> None:
    content = b"{}" + b" " * (size - 3) + b"\n"
    response = upload(limited, ("purpose", None, purpose.encode()), ("file", name, content))
    error = openai_error(response, 400)
    assert (error["param"], error["code"]) == ("file", "file_too_large")


@pytest.mark.parametrize(
    ("purpose", "name", "size"),
    [
        pytest.param("user_data", "big.bin", 1001, id="global-limit"),
        pytest.param("batch", "big.jsonl", 501, id="batch-limit"),
        pytest.param("user_data", "late.bin", 1001, id="file-before-purpose"),
    ],
)
def test_upload_over_the_limit_leaves_nothing_behind(
    limited_server: FileDockServer, limited: httpx.Client, purpose: str, name: str, size: int
) -> None:
    blobs_before = limited_server.blob_files()
    content = b"{}" + b" " * (size - 3) + b"\n"
    parts: list[Part] = [("purpose", None, purpose.encode()), ("file", name, content)]
    if name == "late.bin":
        parts.reverse()
    assert upload(limited, *parts).status_code == 400
    assert limited_server.leftovers() == []
    assert limited_server.blob_files() == blobs_before


@pytest.mark.parametrize(
    ("purpose", "name", "size"),
    [
        pytest.param("user_data", "max.bin", 1000, id="global-limit"),
        pytest.param("batch", "max.jsonl", 500, id="batch-limit"),
        pytest.param("user_data", "max.bin", 600, id="batch-limit-is-batch-only"),
    ],
)
def test_upload_at_the_limit_is_stored(limited: httpx.Client, purpose: str, name: str, size: int) -> None:
    content = b"{}" + b" " * (size - 3) + b"\n"
    response = upload(limited, ("purpose", None, purpose.encode()), ("file", name, content))
    assert response.status_code == 200, response.text
    assert response.json()["bytes"] == size


def test_declared_body_over_limit_is_413_before_reading_it(limited_server: FileDockServer) -> None:
    # http.client sends the headers alone; the server must answer without waiting for the body.
    blobs_before = limited_server.blob_files()
    connection = http.client.HTTPConnection("127.0.0.1", limited_server.port, timeout=10)
    try:
        connection.putrequest("POST", "/v1/files")
        connection.putheader("Content-Type", MULTIPART)
        connection.putheader("Content-Length", str(1000 + FORM_OVERHEAD_BYTES + 1))
        connection.endheaders()
        response = connection.getresponse()
        status, headers, body = response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()
    assert status == 413
    assert headers["x-request-id"].startswith("req_")
    assert set(json.loads(body)["error"]) == {"message", "type", "param", "code"}
    assert limited_server.leftovers() == []
    assert limited_server.blob_files() == blobs_before


def test_declared_body_at_limit_is_read(limited: httpx.Client) -> None:
    # The framing allowance is inclusive: a form of exactly 1000 + 1 MiB bytes is read, not refused.
    # Text fields hold at most 64 KiB each, so the padding is spread over sixteen of them.
    target = 1000 + FORM_OVERHEAD_BYTES

    def body(pad: int, file_bytes: int) -> bytes:
        padding = [(f"pad{i}", None, b"p" * pad) for i in range(16)]
        return multipart(PURPOSE, *padding, ("file", "a.txt", b"x" * file_bytes))

    pad = (target - len(body(0, 0))) // 16
    content = body(pad, target - len(body(pad, 0)))
    assert len(content) == target
    response = limited.post("/files", content=content, headers={"content-type": MULTIPART})
    assert response.status_code == 200, response.text


# --- broken connections, restarts, races ------------------------------------------------------


@pytest.mark.embedded_only("S3 buffers a blob's first 8 MiB in memory, so this cut upload never reaches it")
def test_client_disconnect_mid_upload_leaves_nothing(server: FileDockServer, http: httpx.Client) -> None:
    head = multipart(PURPOSE, ("file", "cut.bin", b"")).split(b"\r\n--" + BOUNDARY.encode() + b"--")[0]
    request = (
        f"POST /v1/files HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {MULTIPART}\r\n"
        f"Content-Length: {len(head) + 500_000}\r\n\r\n"
    ).encode()
    blobs_before = server.blob_files()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request + head + b"x" * 100_000)
        assert wait_until(lambda: server.leftovers() != []), "the upload never reached the blob store"
    assert wait_until(lambda: server.leftovers() == []), server.leftovers()
    assert server.blob_files() == blobs_before
    assert "cut.bin" not in {f["filename"] for f in http.get("/files").json()["data"]}


def test_files_survive_a_restart(make_server: Callable[..., FileDockServer]) -> None:
    server = make_server(workers="1", fsync="true")
    payload = bytes(range(256)) * 40
    with client_for(server) as http:
        created = create(http, "kept.bin", payload)
    server.restart()
    with client_for(server) as http:
        assert created["id"] in {f["id"] for f in http.get("/files").json()["data"]}
        assert http.get(f"/files/{created['id']}").json() == created
        assert http.get(f"/files/{created['id']}/content").content == payload


async def test_concurrent_deletes_of_one_file_have_one_winner(
    server: FileDockServer, http: httpx.Client
) -> None:
    created = create(http)
    limits = httpx.Limits(max_connections=20)
    async with httpx.AsyncClient(base_url=server.openai_url, timeout=30, limits=limits) as client:
        responses = await asyncio.gather(*(client.delete(f"/files/{created['id']}") for _ in range(20)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [404] * 19


# --- expiry ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "suffix"),
    [
        pytest.param("GET", "", id="retrieve"),
        pytest.param("GET", "/content", id="content"),
        pytest.param("DELETE", "", id="delete"),
    ],
)
def test_expired_file_is_404_at_once(
    server: FileDockServer, http: httpx.Client, method: str, suffix: str
) -> None:
    created = upload(
        http, PURPOSE, ("expires_after", None, b'{"anchor":"created_at","seconds":3600}'), FILE
    ).json()
    set_expires_at(server, created["id"], int(time.time()) - 1)
    error = openai_error(http.request(method, f"/files/{created['id']}{suffix}"), 404)
    assert error["message"] == f"No such File object: {created['id']}"


def test_expired_file_leaves_the_list_at_once(server: FileDockServer, http: httpx.Client) -> None:
    created = create(http)
    set_expires_at(server, created["id"], int(time.time()) - 1)
    assert created["id"] not in {f["id"] for f in http.get("/files").json()["data"]}


def test_expired_file_id_still_works_as_a_cursor(server: FileDockServer, http: httpx.Client) -> None:
    older, expired = create(http), create(http)
    set_expires_at(server, expired["id"], int(time.time()) - 1)
    page = http.get("/files", params={"after": expired["id"], "limit": 1}).json()
    assert page["data"][0]["id"] == older["id"]


def test_sweeper_removes_expired_rows_and_blobs(make_server: Callable[..., FileDockServer]) -> None:
    server = make_server(sweep_interval_seconds="0.2", **QUICK)
    with client_for(server) as http:
        kept, doomed = create(http, "kept.txt"), create(http, "doomed.txt")
    assert len(server.blob_files()) == 2
    set_expires_at(server, doomed["id"], int(time.time()) - 1)
    assert wait_until(lambda: len(server.blob_files()) == 1), server.blob_files()
    assert row_count(server, doomed["id"]) == 0
    assert row_count(server, kept["id"]) == 1


# --- auth and download policy ----------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-header"),
        pytest.param({"authorization": "Bearer wrong-key"}, id="wrong-key"),
        pytest.param({"authorization": "Bearer"}, id="empty-key"),
        pytest.param({"authorization": "Basic c2VjcmV0"}, id="basic-scheme"),
        pytest.param({"authorization": "Bearer secret2"}, id="key-with-suffix"),
    ],
)
def test_bad_api_key_is_401_invalid_api_key(keyed_server: FileDockServer, headers: dict[str, str]) -> None:
    with client_for(keyed_server, **headers) as http:
        error = openai_error(http.get("/files"), 401)
    assert error["code"] == "invalid_api_key"


def test_wrong_api_key_is_masked_in_the_message(keyed_server: FileDockServer) -> None:
    with client_for(keyed_server, authorization="Bearer sk-wrong-but-long-key") as http:
        message = openai_error(http.get("/files"), 401)["message"]
    assert "sk-wrong-but-long-key" not in message


@pytest.mark.parametrize(
    ("method", "path"),
    [
        pytest.param("GET", "/files", id="list"),
        pytest.param("GET", "/files/file-doesnotexist", id="retrieve"),
        pytest.param("DELETE", "/files/file-doesnotexist", id="delete"),
        pytest.param("POST", "/files", id="create"),
    ],
)
def test_api_key_is_checked_on_every_route(keyed_server: FileDockServer, method: str, path: str) -> None:
    with client_for(keyed_server) as http:
        assert openai_error(http.request(method, path), 401)["code"] == "invalid_api_key"


def test_right_api_key_is_accepted(keyed_server: FileDockServer) -> None:
    with client_for(keyed_server, authorization="Bearer secret") as http:
        created = create(http)
        assert http.get(f"/files/{created['id']}/content").content == b"x"


@pytest.mark.parametrize(
    "purpose", [pytest.param("user_data", id="user_data"), pytest.param("assistants", id="assistants")]
)
def test_vendor_policy_refuses_downloads_of_uploaded_purposes(
    vendor_server: FileDockServer, purpose: str
) -> None:
    with client_for(vendor_server) as http:
        created = create(http, "a.txt", purpose=purpose)
        error = openai_error(http.get(f"/files/{created['id']}/content"), 400)
    assert error["message"] == f"Not allowed to download files of purpose: {purpose}"
    assert (error["param"], error["code"]) == (None, None)


def test_vendor_policy_allows_batch_downloads(vendor_server: FileDockServer) -> None:
    with client_for(vendor_server) as http:
        created = create(http, "b.jsonl", b'{"a": 1}\n', purpose="batch")
        response = http.get(f"/files/{created['id']}/content")
    assert (response.status_code, response.content) == (200, b'{"a": 1}\n')


# --- curl ---------------------------------------------------------------------------------------


def curl(*args: str, cwd: Path) -> bytes:
    command = ["curl", "--silent", "--show-error", "--fail-with-body", "--noproxy", "*", *args]
    return subprocess.run(command, cwd=cwd, check=True, capture_output=True, timeout=30).stdout


def curl_upload(server: FileDockServer, tmp_path: Path, content: bytes) -> Any:
    (tmp_path / "train.jsonl").write_bytes(content)
    form = ["-F", "purpose=fine-tune", "-F", "file=@train.jsonl"]
    form += ["-F", "expires_after[anchor]=created_at", "-F", "expires_after[seconds]=86400"]
    return json.loads(curl(*form, f"{server.openai_url}/files", cwd=tmp_path))


def test_curl_upload_sets_expires_at(server: FileDockServer, tmp_path: Path) -> None:
    created = curl_upload(server, tmp_path, b'{"prompt": "p", "completion": "c"}\n')
    assert (created["filename"], created["purpose"], created["status"]) == (
        "train.jsonl",
        "fine-tune",
        "processed",
    )
    assert created["expires_at"] == created["created_at"] + 86400


def test_curl_download_prints_the_bytes(server: FileDockServer, tmp_path: Path) -> None:
    content = '{"prompt": "héllo", "completion": "✓"}\n'.encode()
    created = curl_upload(server, tmp_path, content)
    assert curl(f"{server.openai_url}/files/{created['id']}/content", cwd=tmp_path) == content
