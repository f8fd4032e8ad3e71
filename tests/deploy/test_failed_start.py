"""A server that cannot start says why in one line and exits non-zero, whatever its worker count.

systemd's and Docker's restart policies act on the exit status, so `filedock serve` is run as
they run it, and only its status and output are looked at.
"""

import subprocess
from pathlib import Path

import pytest

from tests import servers
from tests.servers import FILEDOCK_BIN, FileDockServer, clean_environment, free_port

TIMEOUT_SECONDS = 60


def serve(tmp_path: Path, *options: str, **settings: str) -> subprocess.CompletedProcess[str]:
    command = [FILEDOCK_BIN, "serve", "--port", str(free_port()), "--data-dir", str(tmp_path / "data")]
    return subprocess.run(
        [*command, *options],
        env=clean_environment(**settings),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=TIMEOUT_SECONDS,
        check=False,
    )


def only_line(output: str) -> str:
    lines = output.strip().splitlines()
    assert len(lines) == 1, output
    return lines[0]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_with_an_unsupported_blob_url_exits_1_with_one_line(tmp_path: Path, workers: str) -> None:
    result = serve(tmp_path, "--workers", workers, blob_url="ftp://x")
    assert result.returncode == 1
    line = only_line(result.stdout)
    assert line.startswith("Error: ") and "FILEDOCK_BLOB_URL='ftp://x'" in line


@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_with_an_unusable_blob_directory_exits_1_with_one_line(tmp_path: Path, workers: str) -> None:
    (tmp_path / "a-file").write_text("not a directory")  # refuses even root, unlike permissions
    blob_url = (tmp_path / "a-file" / "blobs").as_uri()
    result = serve(tmp_path, "--workers", workers, blob_url=blob_url)
    assert result.returncode == 1
    line = only_line(result.stdout)
    assert line.startswith("Error: ") and "FILEDOCK_BLOB_URL" in line


@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_with_an_unreachable_database_exits_1_hiding_its_password(tmp_path: Path, workers: str) -> None:
    database_url = f"postgresql://filedock:hunter2@127.0.0.1:{free_port()}/filedock"
    result = serve(tmp_path, "--workers", workers, database_url=database_url)
    assert result.returncode == 1
    line = only_line(result.stdout)
    assert line.startswith("Error: ") and "FILEDOCK_DATABASE_URL" in line
    assert "hunter2" not in line


def test_serve_with_an_unknown_log_level_is_a_usage_error(tmp_path: Path) -> None:
    result = serve(tmp_path, "--workers", "1", "--log-level", "loud")
    assert result.returncode == 2  # click's status for a usage error
    assert "Error: invalid setting FILEDOCK_LOG_LEVEL='loud'" in result.stdout
    assert "Traceback" not in result.stdout


def test_serve_accepts_a_log_level_in_capitals(tmp_path: Path) -> None:
    # Refused before uvicorn starts (ftp://), so the test only learns whether the level passed.
    result = serve(tmp_path, "--workers", "1", log_level="WARNING", blob_url="ftp://x")
    assert "invalid setting" not in result.stdout and "FILEDOCK_BLOB_URL" in result.stdout


def test_a_test_server_whose_port_was_taken_starts_on_another(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tests' own harness: `free_port` can hand out a port another process binds first (the
    SDK eras run side by side). The server that lost it must not take the other's /healthz for
    its own; it starts again on another port."""
    first = FileDockServer(tmp_path / "first").start()
    try:
        ports = iter([first.port, free_port()])
        monkeypatch.setattr(servers, "free_port", lambda: next(ports))
        second = FileDockServer(tmp_path / "second").start()
        try:
            assert second.port != first.port
            assert second.sql("SELECT count(*) FROM files") == [(0,)]
            assert "address already in use" in second.log_path.read_text()
        finally:
            second.stop()
    finally:
        first.stop()
