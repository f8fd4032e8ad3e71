"""The operator's endpoints through the front door: /healthz, /readyz and /metrics."""

import os
import re
import shutil
import signal
import socket
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests import loopback
from tests.servers import FileDockServer, wait_until

KEY = "sk-metrics-7d1e"


@pytest.mark.embedded_only("replaces the local blobs directory")
def test_readyz_turns_503_naming_the_blob_store_then_recovers(
    make_server: Callable[..., FileDockServer],
) -> None:
    server = make_server()
    assert loopback.get(f"{server.url}/readyz").json() == {"status": "ok"}
    blobs = server.data_dir / "blobs"
    shutil.move(blobs, server.data_dir / "blobs.away")
    blobs.write_text("not a directory")  # root ignores chmod: a file where the directory was
    try:
        answer = loopback.get(f"{server.url}/readyz")
        assert answer.status_code == 503
        assert set(answer.json()["failing"]) == {"blob_store"}
        assert loopback.get(f"{server.url}/healthz").status_code == 200  # alive all the same
    finally:
        blobs.unlink()
        shutil.move(server.data_dir / "blobs.away", blobs)
    assert loopback.get(f"{server.url}/readyz").status_code == 200


def test_health_endpoints_need_no_key_and_healthz_answers_head(
    make_server: Callable[..., FileDockServer],
) -> None:
    server = make_server(api_keys=f"{KEY}=ops")
    assert loopback.head(f"{server.url}/healthz").status_code == 200
    assert loopback.get(f"{server.url}/readyz").status_code == 200


def test_metrics_need_a_key_when_keys_are_configured(make_server: Callable[..., FileDockServer]) -> None:
    server = make_server(api_keys=f"{KEY}=ops")
    assert loopback.get(f"{server.url}/metrics").status_code == 401
    answer = loopback.get(f"{server.url}/metrics", headers={"Authorization": f"Bearer {KEY}"})
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")


def request_total(server: FileDockServer, route: str, status: str) -> float:
    """filedock_http_requests_total of one route and status, from a scrape."""
    return server.requests_total(f'route="{route}"', f'status="{status}"')


def test_metrics_count_every_request_once_across_workers(make_server: Callable[..., FileDockServer]) -> None:
    server = make_server(workers="2")
    before = request_total(server, "/v1/files/{file_id}", "404")
    for _ in range(30):  # a new connection each, so both workers answer some
        assert loopback.get(f"{server.openai_url}/files/file-missing").status_code == 404
    # The worker that answers a scrape counts its own requests up to it; the other writes its
    # counts every second (app.metrics.FLUSH_SECONDS), so all 30 arrive within a few polls.
    assert wait_until(lambda: request_total(server, "/v1/files/{file_id}", "404") >= before + 30, 3.0)
    assert request_total(server, "/v1/files/{file_id}", "404") == before + 30


def test_uploads_in_progress_counts_an_upload_until_it_ends(
    make_server: Callable[..., FileDockServer],
) -> None:
    server = make_server()
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        head = (
            "POST /v1/files HTTP/1.1\r\nHost: x\r\n"
            "Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 100000\r\n\r\n"
        )
        sock.sendall(head.encode() + b"--b\r\n")
        assert wait_until(lambda: metric_value(server, "filedock_uploads_in_progress") == 1.0)
    assert wait_until(lambda: metric_value(server, "filedock_uploads_in_progress") == 0.0)


def metric_value(server: FileDockServer, name: str) -> float | None:
    for line in loopback.get(f"{server.url}/metrics").text.splitlines():
        if line.startswith(f"{name} ") or line.startswith(f"{name}{{"):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_metrics_off_means_no_metrics_route(make_server: Callable[..., FileDockServer]) -> None:
    server = make_server(metrics="false")
    assert loopback.get(f"{server.openai_url}/files/file-missing").status_code == 404
    assert loopback.get(f"{server.url}/metrics").status_code == 404


def test_metrics_report_project_usage_and_bytes(make_server: Callable[..., FileDockServer]) -> None:
    server = make_server()
    files = {"file": ("a.txt", b"12345"), "purpose": (None, "user_data")}
    assert loopback.post(f"{server.openai_url}/files", files=files).status_code == 200
    text = loopback.get(f"{server.url}/metrics").text
    assert 'filedock_project_stored_bytes{project="default"} 5.0' in text
    assert 'filedock_project_files{project="default"} 1.0' in text
    assert re.search(r'filedock_http_received_bytes_total\{dialect="openai"\} [1-9]', text)


def uploads_in_progress(server: FileDockServer) -> float:
    match = re.search(
        r"^filedock_uploads_in_progress (\S+)$", loopback.get(f"{server.url}/metrics").text, re.M
    )
    assert match, "no filedock_uploads_in_progress in the scrape"
    return float(match[1])


def test_a_killed_workers_uploads_in_progress_are_forgotten(
    make_server: Callable[..., FileDockServer],
) -> None:
    server = make_server(workers="2")
    assert server.process is not None
    upload = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    head = "POST /v1/files HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
    upload.sendall((head + "Content-Length: 100000\r\n\r\n--b\r\n").encode())  # then nothing more
    assert wait_until(lambda: uploads_in_progress(server) == 1)
    workers = worker_pids(server.process.pid)
    assert len(workers) == 2
    for pid in workers:  # the one receiving the upload among them; uvicorn starts new ones
        os.kill(pid, signal.SIGKILL)
    assert wait_until(lambda: _answers(server), 30)
    assert uploads_in_progress(server) == 0
    upload.close()


def worker_pids(supervisor: int) -> list[int]:
    """The server's worker processes: the supervisor's children running `app.cli worker`."""
    children = Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()
    return [int(pid) for pid in children if b"app.cli\0worker" in Path(f"/proc/{pid}/cmdline").read_bytes()]


def _answers(server: FileDockServer) -> bool:
    try:
        return loopback.get(f"{server.url}/healthz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False
