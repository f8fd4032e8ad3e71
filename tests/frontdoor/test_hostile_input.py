"""Hostile and broken input on the wire, in all three dialects: never a 5xx, always the dialect's
error JSON, nothing left behind (no temporary file, blob or row) and nothing outside the data dir.

Raw httpx and raw sockets only: this file also runs from the openai 2.x virtual environment.
"""

import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests import loopback
from tests.servers import FileDockServer, wait_until

BOUNDARY = b"hostile-boundary"
MULTIPART = "multipart/form-data; boundary=" + BOUNDARY.decode()
ANTHROPIC = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
GEMINI = {"x-goog-api-key": "k"}
TIMEOUT = 1.0  # the server's header and body idle timeouts, small so the tests are quick
MAX_HEADER_BYTES = 65536  # the default


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FileDockServer]:
    settings = {
        "fsync": "false",
        "header_timeout_seconds": str(TIMEOUT),
        "body_idle_timeout_seconds": str(TIMEOUT),
    }
    server = FileDockServer(tmp_path_factory.mktemp("hostile") / "data", settings).start()
    yield server
    server.stop()


# --- helpers ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    """What a refused request must not change."""

    blobs: tuple[object, ...]
    leftovers: tuple[object, ...]
    rows: tuple[object, ...]


def snapshot(server: FileDockServer) -> Snapshot:
    counts = tuple(
        server.sql(f"SELECT count(*) FROM {table}")[0][0] for table in ("files", "uploads", "upload_parts")
    )
    return Snapshot(tuple(server.blob_files()), tuple(server.leftovers()), counts)


def assert_nothing_left(server: FileDockServer, before: Snapshot) -> None:
    """The state returns to `before` (the server may still be cleaning up a cut request: on a
    loaded machine, noticing a hang-up and discarding the temporary blob can take seconds)."""
    deadline = time.monotonic() + 20
    while snapshot(server) != before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert snapshot(server) == before
    assert_all_inside_data_dir(server)


def posts_finished(server: FileDockServer) -> float:
    """POST requests the server has finished, cleanup included (the request counter moves as the
    access-log middleware lets go of a request; a scrape of the one worker flushes it first)."""
    return server.requests_total('method="POST"')


def cut_request_left_nothing(server: FileDockServer, before: Snapshot, posts_before: float) -> None:
    """Once the server has finished a request the client cut, the state is `before`. Without
    waiting for the request to finish, a loaded server might not have made its temporary file
    yet when the first check runs, and make it just after."""
    assert wait_until(lambda: posts_finished(server) > posts_before, 20), "the cut request never finished"
    assert_nothing_left(server, before)


def assert_all_inside_data_dir(server: FileDockServer) -> None:
    for blob in server.blob_files():
        if not isinstance(blob, str):  # local disk; on S3 they are object keys
            assert blob.resolve().is_relative_to(server.data_dir.resolve()), blob


def form(*parts: tuple[bytes, bytes], boundary: bytes = BOUNDARY) -> bytes:
    """A multipart body from raw (part headers, content) pairs, so any byte can be sent."""
    body = b""
    for headers, content in parts:
        body += b"--" + boundary + b"\r\n" + headers + b"\r\n\r\n" + content + b"\r\n"
    return body + b"--" + boundary + b"--\r\n"


def field(name: str, value: bytes) -> tuple[bytes, bytes]:
    return f'Content-Disposition: form-data; name="{name}"'.encode(), value


def file_part(filename: bytes, content: bytes = b"hello", name: bytes = b"file") -> tuple[bytes, bytes]:
    disposition = b'Content-Disposition: form-data; name="' + name + b'"; filename="' + filename + b'"'
    return disposition + b"\r\nContent-Type: text/plain", content


PURPOSE = field("purpose", b"user_data")


def openai_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    return error


def anthropic_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["type"] == "error" and body["request_id"] == response.headers["request-id"]
    assert body["error"]["message"]
    return dict(body["error"])


def gemini_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"code", "message", "status"} and error["code"] == status
    return error


@dataclass(frozen=True)
class Dialect:
    """How one dialect uploads a multipart file and shapes its errors."""

    name: str
    upload_path: str
    headers: dict[str, str]
    error: Callable[[httpx.Response, int], dict[str, Any]]
    fields: tuple[tuple[bytes, bytes], ...]  # the text fields an upload needs besides `file`
    bad_media_type_status: int


OPENAI = Dialect("openai", "/v1/files", {}, openai_error, (PURPOSE,), 415)
ANTHROPIC_DIALECT = Dialect("anthropic", "/v1/files", ANTHROPIC, anthropic_error, (), 400)
FORM_DIALECTS = [pytest.param(OPENAI, id="openai"), pytest.param(ANTHROPIC_DIALECT, id="anthropic")]


def post_form(server: FileDockServer, dialect: Dialect, body: bytes, **headers: str) -> httpx.Response:
    headers = {"content-type": MULTIPART, **dialect.headers, **headers}
    return loopback.post(server.url + dialect.upload_path, content=body, headers=headers, timeout=30)


def stored_name(response: httpx.Response) -> str:
    body = response.json()
    return str(body["filename"])


def start_gemini(server: FileDockServer, file: object, size: int = 5) -> httpx.Response:
    headers = {
        "x-goog-upload-protocol": "resumable",
        "x-goog-upload-command": "start",
        "x-goog-upload-header-content-length": str(size),
        "x-goog-upload-header-content-type": "text/plain",
        **GEMINI,
    }
    # json.dumps escapes a lone surrogate as \\udc80; httpx's own encoder would fail on it.
    body = json.dumps({"file": file})
    return loopback.post(f"{server.url}/upload/v1beta/files", headers=headers, content=body)


def raw_exchange(server: FileDockServer, data: bytes, *, wait: float = 10.0) -> bytes:
    """Send `data` on a fresh connection and read until the server closes it (or `wait` ends)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=wait) as sock:
        sock.sendall(data)
        return read_until_closed(sock)


def read_until_closed(sock: socket.socket) -> bytes:
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except TimeoutError:
        pass
    return received


def status_of(raw: bytes) -> int:
    return int(raw.split(b" ", 2)[1])


def body_of(raw: bytes) -> Any:
    return json.loads(raw.split(b"\r\n\r\n", 1)[1])


# --- filenames: paths, control characters, length, bad bytes --------------------------------


@pytest.mark.parametrize("dialect", FORM_DIALECTS)
@pytest.mark.parametrize(
    ("filename", "kept"),
    [(b"../../etc/passwd", "passwd"), (b"/etc/passwd", "passwd"), (b"C:\\\\x\\\\y.txt", "y.txt")],
)
def test_a_path_in_a_filename_keeps_only_its_last_component(
    server: FileDockServer, dialect: Dialect, filename: bytes, kept: str
) -> None:
    response = post_form(server, dialect, form(*dialect.fields, file_part(filename)))
    assert response.status_code == 200, response.text
    assert stored_name(response) == kept
    assert_all_inside_data_dir(server)


@pytest.mark.parametrize("dialect", FORM_DIALECTS)
def test_control_characters_are_dropped_from_a_filename(server: FileDockServer, dialect: Dialect) -> None:
    response = post_form(server, dialect, form(*dialect.fields, file_part(b"a\x00b\x01\x7fc.txt")))
    assert response.status_code == 200, response.text
    assert stored_name(response) == "abc.txt"


@pytest.mark.parametrize("dialect", FORM_DIALECTS)
def test_a_10_kb_filename_is_refused_with_the_limit(server: FileDockServer, dialect: Dialect) -> None:
    before = snapshot(server)
    response = post_form(server, dialect, form(*dialect.fields, file_part(b"n" * 10_000 + b".txt")))
    assert "1024" in dialect.error(response, 400)["message"]
    assert_nothing_left(server, before)


@pytest.mark.parametrize("dialect", FORM_DIALECTS)
def test_a_filename_of_exactly_the_limit_is_accepted(server: FileDockServer, dialect: Dialect) -> None:
    name = "é" * 510 + ".txt"  # 1024 bytes of UTF-8
    response = post_form(server, dialect, form(*dialect.fields, file_part(name.encode())))
    assert response.status_code == 200, response.text
    assert stored_name(response) == name


@pytest.mark.parametrize("dialect", FORM_DIALECTS)
def test_non_utf8_filename_bytes_are_replaced(server: FileDockServer, dialect: Dialect) -> None:
    response = post_form(server, dialect, form(*dialect.fields, file_part(b"\xff\xfebad.txt")))
    assert response.status_code == 200, response.text
    assert stored_name(response) == "\ufffd\ufffdbad.txt"


def test_openai_uploads_refuse_a_long_or_broken_filename(server: FileDockServer) -> None:
    before = snapshot(server)
    for filename, message in [("n" * 2000 + ".txt", "1024"), ("\ud800.txt", "Unicode")]:
        upload = {"filename": filename, "purpose": "user_data", "bytes": 5, "mime_type": "text/plain"}
        body = json.dumps(upload)
        response = loopback.post(
            f"{server.url}/v1/uploads", content=body, headers={"content-type": "application/json"}
        )
        assert message in openai_error(response, 400)["message"]
    assert_nothing_left(server, before)


@pytest.mark.parametrize(
    "upload",
    [
        pytest.param({"mime_type": "\ud800"}, id="surrogate-mime-type"),
        pytest.param({"purpose": "\ud800"}, id="surrogate-purpose"),
        pytest.param({"mime_type": "a" * 5000}, id="long-mime-type"),
        pytest.param({"mime_type": "text/plain\u0000"}, id="nul-mime-type"),
    ],
)
def test_openai_uploads_refuse_json_strings_they_cannot_store(
    server: FileDockServer, upload: dict[str, str]
) -> None:
    # Found by this test: a lone surrogate was a 500 (it cannot be encoded, not even in the
    # error message), and a long mime type fails PostgreSQL's VARCHAR(255).
    before = snapshot(server)
    body = json.dumps(
        {"filename": "a.txt", "purpose": "user_data", "bytes": 5, "mime_type": "text/plain", **upload}
    )
    response = loopback.post(
        f"{server.url}/v1/uploads", content=body, headers={"content-type": "application/json"}
    )
    openai_error(response, 400)
    assert_nothing_left(server, before)


# --- JSON a client sends: nesting, huge numbers, constants, surrogates ---------------------

DEEP_ARRAYS = "[" * 100_000
DEEP_OBJECTS = '{"a":' * 5000
HUGE_INT = "9" * 5000  # over Python's 4300-digit limit for int text
UPLOAD = '{"filename": "a.txt", "purpose": "user_data", "bytes": 5, "mime_type": "text/plain"'
HOSTILE_JSON = [
    pytest.param(DEEP_ARRAYS, "nested more than 128", id="deep-arrays"),
    pytest.param(DEEP_OBJECTS, "nested more than 128", id="deep-objects"),
    pytest.param("[" * 200 + "]" * 200, "nested more than 128", id="deep-but-parseable"),
    pytest.param(UPLOAD + ', "bytes": ' + HUGE_INT + "}", "5000 characters", id="huge-int"),
    pytest.param(UPLOAD + ', "x": 1' + "0" * 400 + ".5}", "characters", id="long-float"),
    pytest.param(UPLOAD + ', "bytes": NaN}', "NaN", id="nan"),
]


@pytest.mark.parametrize(("body", "reason"), HOSTILE_JSON)
def test_openai_uploads_refuse_hostile_json_bodies(server: FileDockServer, body: str, reason: str) -> None:
    # Found by this test: 100,000 `[` was a RecursionError, 5000 digits a bare ValueError: 500s.
    before = snapshot(server)
    response = loopback.post(
        f"{server.url}/v1/uploads", content=body, headers={"content-type": "application/json"}
    )
    message = openai_error(response, 400)["message"]
    assert message.startswith("The request body is not valid JSON") and reason in message
    assert_nothing_left(server, before)


def test_openai_upload_complete_refuses_a_deeply_nested_body(server: FileDockServer) -> None:
    created = loopback.post(
        f"{server.url}/v1/uploads", content=UPLOAD + "}", headers={"content-type": "application/json"}
    )
    assert created.status_code == 200, created.text
    response = loopback.post(
        f"{server.url}/v1/uploads/{created.json()['id']}/complete",
        content='{"part_ids": ' + DEEP_ARRAYS + "}",
        headers={"content-type": "application/json"},
    )
    assert "nested more than 128" in openai_error(response, 400)["message"]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        pytest.param("[" * 60_000, "nested more than 128", id="deep"),  # the field holds 64 KiB
        pytest.param(
            '{"anchor": "created_at", "seconds": ' + HUGE_INT + "}", "5000 characters", id="huge-int"
        ),
        pytest.param('{"anchor": "\\ud800", "seconds": 3600}', "lone surrogate", id="surrogate"),
        pytest.param('{"anchor": "created_at", "seconds": Infinity}', "Infinity", id="infinity"),
    ],
)
def test_openai_files_refuse_a_hostile_expires_after_field(
    server: FileDockServer, value: str, reason: str
) -> None:
    before = snapshot(server)
    body = form(PURPOSE, field("expires_after", value.encode()), file_part(b"a.txt"))
    error = openai_error(post_form(server, OPENAI, body), 400)
    assert error["param"] == "expires_after" and "'expires_after'" in error["message"]
    assert reason in error["message"]
    assert_nothing_left(server, before)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        pytest.param(DEEP_ARRAYS, "nested more than 128", id="deep"),
        pytest.param('{"a": ' + HUGE_INT + "}", "5000 characters", id="huge-int"),
    ],
)
def test_openai_batch_files_refuse_a_hostile_line(server: FileDockServer, line: str, reason: str) -> None:
    before = snapshot(server)
    content = b'{"custom_id": "ok"}\n' + line.encode() + b"\n"
    body = form(field("purpose", b"batch"), file_part(b"batch.jsonl", content))
    message = openai_error(post_form(server, OPENAI, body), 400)["message"]
    assert "line 2 is not valid JSON" in message and reason in message
    assert_nothing_left(server, before)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        pytest.param("[" * 60_000, "nested more than 128", id="deep"),  # the start body holds 64 KiB
        pytest.param('{"file": {"sizeBytes": ' + HUGE_INT + "}}", "5000 characters", id="huge-int"),
    ],
)
def test_gemini_refuses_a_hostile_start_body(server: FileDockServer, body: str, reason: str) -> None:
    before = snapshot(server)
    start = {"x-goog-upload-protocol": "resumable", "x-goog-upload-command": "start", **GEMINI}
    response = loopback.post(f"{server.url}/upload/v1beta/files", headers=start, content=body)
    message = gemini_error(response, 400)["message"]
    assert "JSON payload is not valid JSON" in message and reason in message
    assert_nothing_left(server, before)


@pytest.mark.parametrize(
    ("file", "headers"),
    [
        pytest.param({"displayName": "x", "mimeType": "\ud800"}, {}, id="surrogate-mime-type"),
        pytest.param({"displayName": "x", "mimeType": "a" * 5000}, {}, id="long-mime-type"),
        pytest.param({}, {"x-goog-upload-header-content-type": "b" * 5000}, id="long-mime-type-header"),
    ],
)
def test_gemini_refuses_a_mime_type_it_cannot_store(
    server: FileDockServer, file: dict[str, str], headers: dict[str, str]
) -> None:
    before = snapshot(server)
    start = {
        "x-goog-upload-protocol": "resumable",
        "x-goog-upload-command": "start",
        "x-goog-upload-header-content-length": "5",
        **GEMINI,
        **headers,
    }
    body = json.dumps({"file": file})
    gemini_error(loopback.post(f"{server.url}/upload/v1beta/files", headers=start, content=body), 400)
    assert_nothing_left(server, before)


def test_anthropic_refuses_a_part_content_type_it_cannot_store(server: FileDockServer) -> None:
    before = snapshot(server)
    disposition = b'Content-Disposition: form-data; name="file"; filename="a.bin"'
    part = (disposition + b"\r\nContent-Type: application/" + b"x" * 5000, b"hello")
    anthropic_error(post_form(server, ANTHROPIC_DIALECT, form(part)), 400)
    assert_nothing_left(server, before)


@pytest.mark.parametrize(
    ("display_name", "message"),
    [("n" * 2000, "512"), ("€" * 400, "1024"), ("a\u0000b", "NUL"), ("\udc80", "Unicode")],
)
def test_gemini_refuses_a_display_name_it_cannot_store(
    server: FileDockServer, display_name: str, message: str
) -> None:
    before = snapshot(server)
    response = start_gemini(server, {"displayName": display_name})
    assert message in gemini_error(response, 400)["message"]
    assert_nothing_left(server, before)


def test_gemini_display_name_with_a_path_is_only_a_name(server: FileDockServer) -> None:
    response = start_gemini(server, {"displayName": "../../etc/passwd"})
    upload = loopback.post(
        response.headers["x-goog-upload-url"],
        headers={"x-goog-upload-command": "upload, finalize", "x-goog-upload-offset": "0"},
        content=b"hello",
    )
    assert upload.status_code == 200, upload.text
    assert upload.json()["file"]["displayName"] == "passwd"  # the last path component, as elsewhere
    assert_all_inside_data_dir(server)


# --- multipart structure ---------------------------------------------------------------------


@pytest.mark.parametrize("dialect", FORM_DIALECTS)
@pytest.mark.parametrize(
    "parts",
    [
        pytest.param((file_part(b"a.txt"), file_part(b"b.txt")), id="two-files"),
        pytest.param((), id="no-file"),
        pytest.param(tuple(field(f"f{i}", b"x") for i in range(40)), id="too-many-parts"),
        pytest.param((field("purpose", b"x" * 70_000),), id="huge-field"),
    ],
)
def test_a_malformed_form_is_refused(server: FileDockServer, dialect: Dialect, parts: tuple) -> None:
    before = snapshot(server)
    response = post_form(server, dialect, form(*dialect.fields, *parts))
    dialect.error(response, 400)
    assert_nothing_left(server, before)


def test_openai_needs_a_purpose(server: FileDockServer) -> None:
    before = snapshot(server)
    response = post_form(server, OPENAI, form(file_part(b"a.txt")))
    assert openai_error(response, 400)["param"] == "purpose"
    assert_nothing_left(server, before)


def test_a_duplicate_purpose_is_read_once(server: FileDockServer) -> None:
    body = form(field("purpose", b"nonsense"), PURPOSE, file_part(b"a.txt"))
    response = post_form(server, OPENAI, body)
    assert response.status_code == 200, response.text  # the last value wins, as in most form parsers
    assert response.json()["purpose"] == "user_data"


@pytest.mark.parametrize("dialect", FORM_DIALECTS)
@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/json", "application/x-www-form-urlencoded"],
)
def test_the_wrong_content_type_is_refused(
    server: FileDockServer, dialect: Dialect, content_type: str | None
) -> None:
    before = snapshot(server)
    headers = {**dialect.headers, **({"content-type": content_type} if content_type else {})}
    body = b'{"purpose": "user_data", "file": "aGVsbG8="}'
    response = loopback.post(server.url + dialect.upload_path, content=body, headers=headers)
    dialect.error(response, dialect.bad_media_type_status)
    assert_nothing_left(server, before)


@pytest.mark.parametrize("dialect", FORM_DIALECTS)
def test_multipart_without_a_boundary_is_refused(server: FileDockServer, dialect: Dialect) -> None:
    before = snapshot(server)
    body = form(*dialect.fields, file_part(b"a.txt"))
    response = post_form(server, dialect, body, **{"content-type": "multipart/form-data"})
    assert "boundary" in dialect.error(response, 400)["message"]
    assert_nothing_left(server, before)


@pytest.mark.parametrize("dialect", FORM_DIALECTS)
def test_a_body_that_ends_before_its_closing_boundary_is_refused(
    server: FileDockServer, dialect: Dialect
) -> None:
    before = snapshot(server)
    body = form(*dialect.fields, file_part(b"a.txt")).removesuffix(b"--" + BOUNDARY + b"--\r\n")
    dialect.error(post_form(server, dialect, body), 400)
    assert_nothing_left(server, before)


# --- the body against its Content-Length; chunked bodies -------------------------------------


def upload_head(path: str, length: int | None, headers: dict[str, str] | None = None) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Type: {MULTIPART}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    lines.append(f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@pytest.mark.parametrize("dialect", FORM_DIALECTS)
def test_a_body_shorter_than_its_content_length_leaves_nothing(
    server: FileDockServer, dialect: Dialect
) -> None:
    before, posts = snapshot(server), posts_finished(server)
    body = form(*dialect.fields, file_part(b"short.txt", b"x" * 100_000))
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(upload_head(dialect.upload_path, len(body) + 50_000, dialect.headers) + body)
        sock.shutdown(socket.SHUT_WR)  # the client gives up; the server sees the connection end
        cut_request_left_nothing(server, before, posts)


@pytest.mark.parametrize("dialect", FORM_DIALECTS)
def test_a_body_longer_than_its_content_length_is_cut_there(server: FileDockServer, dialect: Dialect) -> None:
    before = snapshot(server)
    body = form(*dialect.fields, file_part(b"long.txt", b"y" * 1000))
    raw = raw_exchange(server, upload_head(dialect.upload_path, len(body) // 2, dialect.headers) + body)
    assert status_of(raw) == 400, raw[:300]  # the form ends before its closing boundary
    assert_nothing_left(server, before)


@pytest.mark.parametrize("dialect", FORM_DIALECTS)
def test_a_chunked_upload_is_stored_byte_exact(server: FileDockServer, dialect: Dialect) -> None:
    content = bytes(range(256)) * 4096  # 1 MiB, every byte value
    body = form(*dialect.fields, file_part(b"chunked.bin", content))

    def pieces() -> Iterator[bytes]:  # a generator: httpx sends Transfer-Encoding: chunked
        for start in range(0, len(body), 65_537):
            yield body[start : start + 65_537]

    response = loopback.post(
        server.url + dialect.upload_path,
        content=pieces(),
        headers={"content-type": MULTIPART, **dialect.headers},
    )
    assert response.status_code == 200, response.text
    assert response.request.headers["transfer-encoding"] == "chunked"
    file_id = response.json()["id"]
    download = loopback.get(f"{server.url}{dialect.upload_path}/{file_id}/content", headers=dialect.headers)
    assert download.status_code == 200
    assert download.content == content


def test_a_chunked_gemini_chunk_is_stored_byte_exact(server: FileDockServer) -> None:
    content = bytes(range(256)) * 1024
    start = start_gemini(server, {"displayName": "chunked.bin"}, size=len(content))
    response = loopback.post(
        start.headers["x-goog-upload-url"],
        headers={"x-goog-upload-command": "upload, finalize", "x-goog-upload-offset": "0"},
        content=iter([content[:1000], content[1000:]]),
    )
    assert response.status_code == 200, response.text
    name = response.json()["file"]["name"]
    download = loopback.get(f"{server.url}/v1beta/{name}:download?alt=media", headers=GEMINI)
    assert download.content == content


# --- ids and query parameters -----------------------------------------------------------------

HOSTILE_IDS = [
    "file-1' OR '1'='1",
    "file-1%27%20OR%20%271%27%3D%271",
    "..%2F..%2Fetc%2Fpasswd",
    "%2e%2e%2f%2e%2e%2fetc",
    "%00",
    "file-%00abc",
    "file-" + "A" * 5000,
    "file-%ff%fe",
    "\u202efile",
]


@pytest.mark.parametrize("file_id", HOSTILE_IDS)
@pytest.mark.parametrize("suffix", ["", "/content"])
def test_openai_hostile_ids_are_not_found(server: FileDockServer, file_id: str, suffix: str) -> None:
    response = loopback.get(f"{server.url}/v1/files/{file_id}{suffix}")
    openai_error(response, 404)
    openai_error(loopback.delete(f"{server.url}/v1/files/{file_id}"), 404)


@pytest.mark.parametrize("file_id", HOSTILE_IDS)
def test_anthropic_hostile_ids_are_not_found(server: FileDockServer, file_id: str) -> None:
    for method, suffix in (("GET", ""), ("GET", "/content"), ("DELETE", "")):
        response = loopback.request(method, f"{server.url}/v1/files/{file_id}{suffix}", headers=ANTHROPIC)
        anthropic_error(response, 404)


@pytest.mark.parametrize("file_id", HOSTILE_IDS)
def test_gemini_hostile_ids_are_refused(server: FileDockServer, file_id: str) -> None:
    for method, suffix in (("GET", ""), ("GET", ":download?alt=media"), ("DELETE", "")):
        response = loopback.request(method, f"{server.url}/v1beta/files/{file_id}{suffix}", headers=GEMINI)
        assert response.status_code in (400, 403, 404), response.text
        gemini_error(response, response.status_code)


def test_hostile_upload_ids_are_not_found(server: FileDockServer) -> None:
    for upload_id in ("upload_1' OR '1'='1", "..%2F..%2Fetc", "%00"):
        for action in ("complete", "cancel"):
            response = loopback.post(f"{server.url}/v1/uploads/{upload_id}/{action}", json={"part_ids": []})
            openai_error(response, 404)
        before = snapshot(server)
        body = form(file_part(b"upload", name=b"data"))
        response = loopback.post(
            f"{server.url}/v1/uploads/{upload_id}/parts", content=body, headers={"content-type": MULTIPART}
        )
        openai_error(response, 404)
        assert_nothing_left(server, before)


@pytest.mark.parametrize(
    ("path", "headers", "params"),
    [
        ("/v1/files", {}, {"limit": "99999999999999999999999"}),
        ("/v1/files", {}, {"limit": "-1"}),
        ("/v1/files", {}, {"limit": "1e309"}),
        ("/v1/files", {}, {"after": "file-1' OR '1'='1"}),
        ("/v1/files", {}, {"after": "x" * 5000}),
        ("/v1/files", {}, {"order": "sideways"}),
        ("/v1/files", ANTHROPIC, {"limit": "99999999999999999999999"}),
        ("/v1/files", ANTHROPIC, {"after_id": "'; DROP TABLE files; --"}),
        ("/v1/files", ANTHROPIC, {"before_id": "%00"}),
        ("/v1beta/files", GEMINI, {"pageSize": "99999999999999999999999"}),
        ("/v1beta/files", GEMINI, {"pageSize": "-5"}),
        ("/v1beta/files", GEMINI, {"pageToken": "'; DROP TABLE files; --"}),
    ],
)
def test_hostile_list_parameters_are_never_a_server_error(
    server: FileDockServer, path: str, headers: dict[str, str], params: dict[str, str]
) -> None:
    response = loopback.get(server.url + path, headers=headers, params=params)
    # 404: an `after` cursor that names no file (OpenAI's answer too).
    assert response.status_code in (200, 400, 404), response.text
    assert response.headers["content-type"] == "application/json"
    assert server.sql("SELECT count(*) FROM files")[0][0] is not None  # the table is still there


@pytest.mark.parametrize(
    ("path", "headers"), [("/v1/files", {}), ("/v1/files", ANTHROPIC), ("/v1beta/files", GEMINI)]
)
def test_unknown_query_parameters_are_ignored(server: FileDockServer, path: str, headers: dict) -> None:
    response = loopback.get(server.url + path, headers=headers, params={"evil": "<script>", "__proto__": "1"})
    assert response.status_code == 200, response.text


# --- headers: size and pace -------------------------------------------------------------------


def test_oversized_headers_get_431(server: FileDockServer) -> None:
    big = {f"x-filler-{i}": "v" * 1000 for i in range(70)}  # many headers, each well-formed
    response = loopback.get(f"{server.url}/v1/files", headers=big)
    error = openai_error(response, 431)
    assert str(MAX_HEADER_BYTES) in error["message"]
    assert response.headers["connection"] == "close"


def test_one_huge_header_line_gets_431_before_it_ends(server: FileDockServer) -> None:
    # The header never ends: the server must not buffer it until it does.
    raw = raw_exchange(server, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (MAX_HEADER_BYTES + 1))
    assert status_of(raw) == 431
    assert "error" in body_of(raw)


def test_a_header_line_trickled_in_small_pieces_gets_431(server: FileDockServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
        try:
            for _ in range(MAX_HEADER_BYTES // 4000 + 2):
                time.sleep(0.01)
                sock.sendall(b"b" * 4000)
        except OSError:
            pass  # refused and closed before the last piece
        raw = read_until_closed(sock)
    assert status_of(raw) == 431


def test_pipelined_requests_are_each_answered(server: FileDockServer) -> None:
    one = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    raw = raw_exchange(server, one * 3 + b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert raw.count(b"HTTP/1.1 200 OK") == 4


def responses_of(raw: bytes) -> list[tuple[int, Any]]:
    """Each (status, JSON body) in a stream of responses that all carry a content-length."""
    found = []
    while raw:
        head, rest = raw.split(b"\r\n\r\n", 1)
        length = int(
            next(line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:"))[15:]
        )
        found.append((status_of(head), json.loads(rest[:length])))
        raw = rest[length:]
    return found


@pytest.mark.parametrize(
    "garbage",
    [
        pytest.param(b"GARBAGE \x00\x01 nonsense\r\n\r\n", id="not-http"),
        pytest.param(b"POST /v1/files HTTP/1.1\r\nBad Header\r\n\r\n", id="bad-header"),
    ],
)
def test_an_upload_followed_by_garbage_is_answered_before_the_refusal(
    server: FileDockServer, garbage: bytes
) -> None:
    # Found by this test: the 400 for the garbage went out at once and the connection closed,
    # so the client never saw the 200 of the upload it had sent whole, and would send it again.
    filename = f"pipelined-{time.monotonic_ns()}.txt"
    body = form(PURPOSE, file_part(filename.encode(), b"stored once"))
    raw = raw_exchange(server, upload_head("/v1/files", len(body)) + body + garbage)
    (upload_status, upload), (refusal_status, refusal) = responses_of(raw)
    assert (upload_status, upload["filename"], upload["bytes"]) == (200, filename, 11)
    assert refusal_status == 400 and refusal["error"]["message"]
    listed = loopback.get(f"{server.url}/v1/files", params={"limit": 10000}).json()["data"]
    assert [f["id"] for f in listed if f["filename"] == filename] == [upload["id"]]


def test_pipelined_requests_before_garbage_are_each_answered(server: FileDockServer) -> None:
    one = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    raw = raw_exchange(server, one * 3 + b"\x16\x03\x01 not http\r\n\r\n")
    assert [status for status, _ in responses_of(raw)] == [200, 200, 200, 400]


def test_a_huge_url_gets_431(server: FileDockServer) -> None:
    raw = raw_exchange(server, b"GET /v1/files/" + b"a" * MAX_HEADER_BYTES + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status_of(raw) == 431


def test_headers_just_under_the_limit_are_served(server: FileDockServer) -> None:
    response = loopback.get(f"{server.url}/healthz", headers={"x-filler": "v" * (MAX_HEADER_BYTES - 2000)})
    assert response.status_code == 200


@pytest.mark.parametrize(
    "sent", [pytest.param(b"", id="silent"), pytest.param(b"GET /healthz HTTP/1.1\r\nHost: x\r\n", id="slow")]
)
def test_slow_headers_are_cut_off_after_the_timeout(server: FileDockServer, sent: bytes) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT + 5) as sock:
        started = time.monotonic()
        sock.sendall(sent)
        try:
            for _ in range(20 if sent else 0):  # a slowloris trickle: one header byte at a time
                time.sleep(TIMEOUT / 10)
                sock.sendall(b"X")
        except OSError:
            pass  # the server already closed the connection
        raw = read_until_closed(sock)
        elapsed = time.monotonic() - started
    assert status_of(raw) == 408
    assert raw.endswith(b"}")  # a complete JSON error body, then the connection closed
    assert elapsed < TIMEOUT + 3


def test_a_keep_alive_connection_still_serves_several_requests(server: FileDockServer) -> None:
    with httpx.Client(base_url=server.url) as client:
        for _ in range(3):
            assert client.get("/healthz").status_code == 200
            time.sleep(TIMEOUT / 2)


# --- stalled bodies ---------------------------------------------------------------------------


def stall(server: FileDockServer, head: bytes, first_bytes: bytes) -> bytes:
    """Send the head and some of the body, then nothing: the server answers after its timeout."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT + 10) as sock:
        started = time.monotonic()
        sock.sendall(head + first_bytes)
        raw = read_until_closed(sock)
        assert TIMEOUT * 0.9 <= time.monotonic() - started < TIMEOUT + 5
    return raw


@pytest.mark.parametrize("dialect", FORM_DIALECTS)
def test_a_stalled_upload_gets_408_and_leaves_nothing(server: FileDockServer, dialect: Dialect) -> None:
    before = snapshot(server)
    body = form(*dialect.fields, file_part(b"stalled.bin", b"z" * 200_000))
    raw = stall(server, upload_head(dialect.upload_path, len(body), dialect.headers), body[:150_000])
    assert status_of(raw) == 408
    assert b"connection: close" in raw.lower()
    payload = body_of(raw)
    assert "error" in payload and (dialect.name != "anthropic" or payload["type"] == "error")
    assert_nothing_left(server, before)


def test_a_slow_upload_that_never_pauses_for_the_timeout_is_stored(server: FileDockServer) -> None:
    """The deadline is on each wait for more of the body, not on the whole body."""
    content = os.urandom(90_000)
    body = form(*OPENAI.fields, file_part(b"slow.bin", content))
    with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT + 10) as sock:
        started = time.monotonic()
        sock.sendall(upload_head(OPENAI.upload_path, len(body)))
        # Ten pieces 0.3 timeouts apart: 3 timeouts in all, and a gap that a loaded machine may
        # stretch by most of a timeout before it looks like a stall (0.6 apart failed under load).
        piece = len(body) // 10 + 1
        for offset in range(0, len(body), piece):
            sock.sendall(body[offset : offset + piece])
            time.sleep(TIMEOUT * 0.3)
        raw = b""
        while b'"status_details"' not in raw and (chunk := sock.recv(65536)):
            raw += chunk
        assert time.monotonic() - started > 2 * TIMEOUT  # longer than the timeout in all
    assert status_of(raw) == 200, raw
    file_id = body_of(raw)["id"]
    assert loopback.get(f"{server.url}/v1/files/{file_id}/content").content == content


def test_a_stalled_upload_part_gets_408_and_leaves_nothing(server: FileDockServer) -> None:
    created = loopback.post(
        f"{server.url}/v1/uploads",
        json={"filename": "p.txt", "purpose": "user_data", "bytes": 10, "mime_type": "text/plain"},
    )
    assert created.status_code == 200, created.text
    before = snapshot(server)
    body = form(file_part(b"upload", b"p" * 10, name=b"data"))
    raw = stall(server, upload_head(f"/v1/uploads/{created.json()['id']}/parts", len(body)), body[:-20])
    assert status_of(raw) == 408
    assert body_of(raw)["error"]["type"] == "invalid_request_error"
    assert_nothing_left(server, before)


def test_a_stalled_gemini_chunk_gets_408_and_leaves_nothing(server: FileDockServer) -> None:
    start = start_gemini(server, {"displayName": "stalled.txt"}, size=1000)
    path = start.headers["x-goog-upload-url"].removeprefix(server.url)
    before = snapshot(server)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Goog-Upload-Command: upload, finalize\r\n"
        "X-Goog-Upload-Offset: 0\r\nContent-Length: 1000\r\n\r\n"
    ).encode()
    raw = stall(server, head, b"g" * 500)
    assert status_of(raw) == 408
    assert b"x-goog-upload-status: final" in raw.lower()
    assert body_of(raw)["error"]["code"] == 408
    assert_nothing_left(server, before)
    query = loopback.post(start.headers["x-goog-upload-url"], headers={"x-goog-upload-command": "query"})
    assert query.headers["x-goog-upload-size-received"] == "0"


# --- clients that hang up mid-upload ----------------------------------------------------------


def hang_up(server: FileDockServer, head: bytes, partial: bytes) -> None:
    """Send the head and part of the body, give the server a moment to start storing it, close;
    then check that once the server has finished the request, nothing is left."""
    before, posts = snapshot(server), posts_finished(server)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head + partial)
        time.sleep(TIMEOUT / 4)  # less than the idle timeout: this is a disconnect, not a stall
    cut_request_left_nothing(server, before, posts)


def test_a_client_hanging_up_mid_part_leaves_nothing(server: FileDockServer) -> None:
    created = loopback.post(
        f"{server.url}/v1/uploads",
        json={"filename": "p.txt", "purpose": "user_data", "bytes": 300_000, "mime_type": "text/plain"},
    )
    body = form(file_part(b"upload", b"p" * 300_000, name=b"data"))
    hang_up(server, upload_head(f"/v1/uploads/{created.json()['id']}/parts", len(body)), body[:100_000])


def test_a_client_hanging_up_mid_gemini_chunk_leaves_nothing(server: FileDockServer) -> None:
    start = start_gemini(server, {"displayName": "cut.txt"}, size=300_000)
    path = start.headers["x-goog-upload-url"].removeprefix(server.url)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Goog-Upload-Command: upload, finalize\r\n"
        "X-Goog-Upload-Offset: 0\r\nContent-Length: 300000\r\n\r\n"
    ).encode()
    hang_up(server, head, b"g" * 100_000)
    query = loopback.post(start.headers["x-goog-upload-url"], headers={"x-goog-upload-command": "query"})
    assert query.headers["x-goog-upload-size-received"] == "0"  # the upload can resume from 0


@pytest.mark.parametrize("dialect", FORM_DIALECTS)
def test_a_client_hanging_up_mid_file_leaves_nothing(server: FileDockServer, dialect: Dialect) -> None:
    body = form(*dialect.fields, file_part(b"cut.bin", b"c" * 300_000))
    hang_up(server, upload_head(dialect.upload_path, len(body), dialect.headers), body[:100_000])


# --- every response is safe to show in a browser ----------------------------------------------

CSP = "default-src 'none'; frame-ancestors 'none'; sandbox"


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("GET", "/healthz", {}),
        ("GET", "/v1/files", {}),
        ("GET", "/v1/files/file-nope", {}),
        ("GET", "/no/such/route", {}),
        ("POST", "/v1/files", {"content-type": "text/plain"}),
        ("GET", "/v1/files", ANTHROPIC),
        ("GET", "/v1/files/file_nope", ANTHROPIC),
        ("GET", "/v1beta/files", GEMINI),
        ("GET", "/v1beta/files/nope", GEMINI),
        ("GET", "/gemini/v1beta/nowhere", GEMINI),
    ],
)
def test_every_response_has_a_restrictive_csp_and_nosniff(
    server: FileDockServer, method: str, path: str, headers: dict[str, str]
) -> None:
    response = loopback.request(method, server.url + path, headers=headers)
    assert response.headers["content-security-policy"] == CSP
    assert response.headers["x-content-type-options"] == "nosniff"
    assert len(response.headers.get_list("content-security-policy")) == 1


@pytest.mark.parametrize("dialect", FORM_DIALECTS)
def test_downloads_of_html_carry_the_csp(server: FileDockServer, dialect: Dialect) -> None:
    html = b"<script>alert(document.cookie)</script>"
    body = form(*dialect.fields, (b'Content-Disposition: form-data; name="file"; filename="x.html"', html))
    created = post_form(server, dialect, body)
    assert created.status_code == 200, created.text
    url = f"{server.url}{dialect.upload_path}/{created.json()['id']}/content"
    download = loopback.get(url, headers=dialect.headers)
    assert download.content == html
    assert download.headers["content-security-policy"] == CSP
    assert download.headers.get_list("x-content-type-options") == ["nosniff"]
    assert download.headers["content-disposition"].startswith("attachment")


def test_protocol_level_refusals_carry_the_csp(server: FileDockServer) -> None:
    raw = raw_exchange(server, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (MAX_HEADER_BYTES + 1))
    assert f"content-security-policy: {CSP}".encode() in raw
    assert b"x-content-type-options: nosniff" in raw
    broken = raw_exchange(server, b"NOT HTTP AT ALL\r\n\r\n")
    assert status_of(broken) == 400
    assert b"x-content-type-options: nosniff" in broken
