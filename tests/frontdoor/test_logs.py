"""Logs through the front door: the JSON format, the access line's fields, what never appears,
and `--log-level` reaching FileDock's own loggers in the workers."""

import hashlib
import json
import re
import socket
import time
from collections.abc import Callable
from typing import Any

import httpx

from tests import loopback
from tests.servers import FileDockServer, wait_until

KEY = "sk-logtest-4f9a1c2e7b"
ACCESS_FIELDS = {
    *("time", "request_id", "client_request_id", "client", "method", "path", "dialect", "status"),
    *("bytes_in", "bytes_out", "duration_ms", "project"),
}


def log_lines(server: FileDockServer) -> list[str]:
    return [line for line in server.log_path.read_text().splitlines() if line.strip()]


def access_lines(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in entries if e["logger"] == "filedock.access" and "method" in e]


def hang_up_mid_upload(server: FileDockServer, declared: int, sent: int) -> None:
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        head = (
            f"POST /v1/files HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n"
            f"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: {declared}\r\n\r\n"
        )
        sock.sendall(head.encode() + b"--b\r\n" + b"x" * (sent - 5))
        time.sleep(0.3)


def send_oversized_headers(server: FileDockServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b"GET /v1/files HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 4096 + b"\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 431")


def exercise(server: FileDockServer) -> None:
    auth = {"Authorization": f"Bearer {KEY}", "X-Client-Request-Id": "client-42"}
    with httpx.Client(base_url=server.openai_url, headers=auth) as http:
        assert http.get("/files").status_code == 200
        assert http.get("/files", headers={"Authorization": "Bearer sk-wrong-key-0000"}).status_code == 401
        assert http.get("/files/file-missing").status_code == 404
        files = {"file": ("a.txt", b"hello"), "purpose": (None, "user_data")}
        assert http.post("/files", files=files).status_code == 200
    hang_up_mid_upload(server, declared=100_000, sent=1000)
    send_oversized_headers(server)


def test_json_logs_are_one_object_a_line_with_the_access_fields_and_no_key(
    make_server: Callable[..., FileDockServer],
) -> None:
    server = make_server(
        log_format="json", log_level="info", api_keys=f"{KEY}=alpha", max_header_bytes="2048", workers="1"
    )
    exercise(server)
    assert wait_until(lambda: "hung up" in server.log_path.read_text())
    server.stop()
    text = server.log_path.read_text()
    entries = [json.loads(line) for line in log_lines(server)]  # every line is JSON
    lines = access_lines(entries)
    assert all(set(line) >= ACCESS_FIELDS for line in lines)
    by_status = {line["status"]: line for line in lines if line["path"].startswith("/v1/files")}
    assert {200, 401, 404} <= set(by_status)
    assert by_status[404]["error"] == "FileNotFound"
    assert by_status[401]["error_code"] == "invalid_api_key"
    assert by_status[200]["client_request_id"] == "client-42"
    assert by_status[200]["request_id"].startswith("req_")
    assert any(line["project"] == "alpha" and line["method"] == "POST" for line in lines)
    hung_up = [line for line in lines if line.get("client_hung_up")]
    assert len(hung_up) == 1 and 0 < hung_up[0]["bytes_in"] < 100_000
    refused = [e for e in entries if e.get("status") == 431]
    assert refused and refused[0]["client"].startswith("127.0.0.1:")
    banner = [e for e in entries if e.get("keys") == 1 and e.get("auth") == "keys"]
    assert len(banner) == 1 and banner[0]["workers"] == 1
    for secret in (KEY, hashlib.sha256(KEY.encode()).hexdigest(), "sk-wrong-key-0000"):
        assert secret not in text


def test_text_access_line_reads_like_a_combined_log_with_each_field_once(
    make_server: Callable[..., FileDockServer],
) -> None:
    server = make_server(log_level="info")
    loopback.get(f"{server.openai_url}/files/file-nope", headers={"X-Client-Request-Id": "run 7"})
    server.stop()
    line = next(line for line in log_lines(server) if "file-nope" in line)
    head = re.search(
        r' INFO filedock\.access: 127\.0\.0\.1:\d+ - default "GET /v1/files/file-nope" 404 \d+ ', line
    )
    assert head is not None, line
    assert "error=FileNotFound" in line and "dialect=openai" in line and 'client_request_id="run 7"' in line
    # The status once, as the combined log has it (a bare "404" may also be in the client's port)
    assert line.count(" 404 ") == 1 and "status=" not in line
    assert line.count("file-nope") == 1 and "method=" not in line


def test_access_log_off_writes_no_access_line_at_info(make_server: Callable[..., FileDockServer]) -> None:
    server = make_server(log_level="info", access_log="false")
    assert loopback.get(f"{server.openai_url}/files/file-nope").status_code == 404
    assert loopback.get(f"{server.url}/metrics").status_code == 200
    server.stop()
    assert "filedock.access" not in server.log_path.read_text()


def expire_one_file(server: FileDockServer) -> None:
    files = {"file": ("a.txt", b"bye"), "purpose": (None, "user_data")}
    created = loopback.post(f"{server.openai_url}/files", files=files).json()
    server.sql("UPDATE files SET expires_at = ? WHERE id = ?", int(time.time()) - 1, created["id"])


def test_log_level_reaches_filedock_loggers_in_the_workers(
    make_server: Callable[..., FileDockServer],
) -> None:
    verbose = make_server(log_level="debug", sweep_interval_seconds="0.2", workers="2")
    quiet = make_server(log_level="warning", sweep_interval_seconds="0.2", workers="2")
    for server in (verbose, quiet):
        expire_one_file(server)
    assert wait_until(lambda: "removed 1 expired files" in verbose.log_path.read_text())
    assert wait_until(lambda: quiet.sql("SELECT count(*) FROM files") == [(0,)])
    quiet.stop()
    assert "removed 1 expired files" not in quiet.log_path.read_text()
    assert "filedock.access" not in quiet.log_path.read_text()
