"""`filedock serve --workers 2` through the front door: one small supervisor and its workers,
a dead worker replaced, SIGTERM passed on to every worker, and workers that import only what
the configured backends need (the process tree's memory, docs/performance.md)."""

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests import loopback
from tests.servers import FILEDOCK_BIN, FileDockServer, clean_environment, free_port, wait_until

# What a worker on SQLite and local disk must not import: the other backends' drivers, the
# migrations, the files client and its HTTP client, the WebSocket protocol.
NOT_FOR_AN_EMBEDDED_WORKER = ("alembic", "mako", "asyncpg", "obstore", "httpx", "tqdm", "websockets")


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in os.scandir(f"/proc/{pid}/task"):
        with open(f"{task.path}/children") as listing:
            found.extend(int(child) for child in listing.read().split())
    return sorted(found)


def mapped_files(pid: int) -> str:
    with open(f"/proc/{pid}/maps") as maps:
        return maps.read()


def test_serve_runs_a_supervisor_and_one_process_per_worker(
    make_server: Callable[..., FileDockServer],
) -> None:
    server = make_server(workers="2")
    assert server.process is not None
    workers = children(server.process.pid)
    assert len(workers) == 2  # no multiprocessing resource tracker beside them
    supervisor_maps = mapped_files(server.process.pid)
    assert "pydantic_core" not in supervisor_maps and "uvloop" not in supervisor_maps
    assert all("uvloop" in mapped_files(worker) for worker in workers)


def test_a_worker_that_dies_is_replaced(make_server: Callable[..., FileDockServer]) -> None:
    server = make_server(workers="2")
    assert server.process is not None
    supervisor = server.process.pid
    first, second = children(supervisor)
    os.kill(first, signal.SIGKILL)
    assert wait_until(lambda: len(children(supervisor)) == 2 and first not in children(supervisor))
    assert second in children(supervisor)
    assert all(loopback.get(f"{server.url}/healthz").status_code == 200 for _ in range(6))


def test_sighup_replaces_every_worker(make_server: Callable[..., FileDockServer]) -> None:
    server = make_server(workers="2")
    assert server.process is not None
    supervisor = server.process.pid
    old = set(children(supervisor))
    os.kill(supervisor, signal.SIGHUP)
    assert wait_until(lambda: len(children(supervisor)) == 2 and not old & set(children(supervisor)), 60)
    assert server.process.poll() is None
    assert wait_until(lambda: _healthy(server.port), 30)


def test_sigterm_stops_every_worker_gracefully(make_server: Callable[..., FileDockServer]) -> None:
    server = make_server(workers="2", log_level="info")
    assert server.process is not None
    workers = children(server.process.pid)
    server.stop(signal.SIGTERM)
    assert server.process.returncode == 0
    log = server.log_path.read_text()
    assert all(f"Finished server process [{worker}]" in log for worker in workers)


def test_a_worker_on_sqlite_and_disk_imports_only_what_they_need(tmp_path: Path) -> None:
    """One worker as the supervisor starts it, with `-X importtime` listing every import."""
    env = clean_environment(data_dir=str(tmp_path / "data"), log_level="warning")
    subprocess.run([FILEDOCK_BIN, "migrate", "--quiet"], env=env, check=True)
    port = free_port()
    with socket.create_server(("127.0.0.1", port)) as listener:
        command = [
            sys.executable,
            "-X",
            "importtime",
            "-m",
            "app.cli",
            "worker",
            "--fd",
            str(listener.fileno()),
        ]
        listing = (tmp_path / "imports.txt").open("w")  # a file: a pipe could fill and stall it
        worker = subprocess.Popen(command, env=env, pass_fds=(listener.fileno(),), stderr=listing)
        try:
            ready = wait_until(lambda: _healthy(port) or worker.poll() is not None, seconds=30)
            assert ready and worker.poll() is None, "the worker did not answer /healthz"
            assert loopback.get(f"http://127.0.0.1:{port}/v1/files").status_code == 200
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=30)
            listing.close()
    imports = (tmp_path / "imports.txt").read_text()
    imported = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in imports.splitlines() if "|" in line}
    assert {"fastapi", "sqlalchemy", "aiosqlite"} <= imported  # the listing is complete
    assert sorted(imported & set(NOT_FOR_AN_EMBEDDED_WORKER)) == []


def _healthy(port: int) -> bool:
    try:
        return loopback.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_on_a_port_in_use_exits_non_zero(tmp_path: Path, workers: str) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = str(taken.getsockname()[1])
        env = clean_environment(workers=workers, log_level="warning")
        command = [FILEDOCK_BIN, "serve", "--host", "127.0.0.1", "--port", port, "--data-dir", str(tmp_path)]
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert port in result.stderr
