"""`filedock files …` as a subprocess against a real server on loopback: uploads (one request, and
the Uploads API in parallel Parts), downloads that resume, listing, deleting, pending Uploads,
and the one-line errors with a non-zero exit.

Only the standard library, pytest, httpx and tests helpers are imported; the CLI comes from
FILEDOCK_BIN, as the server does.
"""

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import loopback
from tests.frontdoor.tenancy_helpers import module_server
from tests.servers import FILEDOCK_BIN, FileDockServer, clean_environment

ALPHA = "sk-files-cli-alpha"
BETA = "sk-files-cli-beta"
MiB = 1024 * 1024


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FileDockServer]:
    yield from module_server(tmp_path_factory, "files-cli", api_keys=f"{ALPHA}=alpha,{BETA}=beta")


def files_cli(
    server: FileDockServer, *args: str, key: str = ALPHA, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """`filedock files <args>`, configured through FILEDOCK_URL and FILEDOCK_API_KEY."""
    env = clean_environment()
    env.update(FILEDOCK_URL=server.url, FILEDOCK_API_KEY=key)
    return subprocess.run(
        [FILEDOCK_BIN, "files", *args], env=env, capture_output=True, text=True, timeout=120, cwd=cwd
    )


def ok_json(server: FileDockServer, *args: str, key: str = ALPHA) -> Any:
    done = files_cli(server, *args, "--json", key=key)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def random_file(path: Path, size: int) -> bytes:
    data = os.urandom(size)
    path.write_bytes(data)
    return data


def test_upload_and_download_of_50_mb_are_byte_exact(live: FileDockServer, tmp_path: Path) -> None:
    data = random_file(tmp_path / "big.bin", 50 * MiB)
    [uploaded] = ok_json(live, "upload", str(tmp_path / "big.bin"))
    assert uploaded["bytes"] == 50 * MiB and uploaded["filename"] == "big.bin"
    fetched = ok_json(live, "download", uploaded["id"], "-o", str(tmp_path / "copy.bin"))
    assert fetched == {"id": uploaded["id"], "path": str(tmp_path / "copy.bin"), "bytes": 50 * MiB}
    assert (tmp_path / "copy.bin").read_bytes() == data
    assert not (tmp_path / "copy.bin.part").exists()


def test_upload_above_the_threshold_uses_the_uploads_api(live: FileDockServer, tmp_path: Path) -> None:
    data = random_file(tmp_path / "parts.bin", 5 * MiB + 123)
    args = ("--multipart-threshold", "1MiB", "--part-size", "1MiB", "--parallel", "3")
    [uploaded] = ok_json(live, "upload", str(tmp_path / "parts.bin"), *args)
    rows = live.sql("SELECT status, received_bytes FROM uploads WHERE file_id = ?", uploaded["id"])
    assert rows == [("completed", 5 * MiB + 123)]
    ok_json(live, "download", uploaded["id"], "-o", str(tmp_path / "back.bin"))
    assert (tmp_path / "back.bin").read_bytes() == data


def test_download_resumes_a_partial_file(live: FileDockServer, tmp_path: Path) -> None:
    data = random_file(tmp_path / "resume.bin", 3 * MiB)
    [uploaded] = ok_json(live, "upload", str(tmp_path / "resume.bin"))
    out = tmp_path / "out"
    out.mkdir()
    (out / "resume.bin.part").write_bytes(data[: MiB + 7])
    done = files_cli(live, "download", uploaded["id"], cwd=out)
    assert done.returncode == 0, done.stderr
    assert (out / "resume.bin").read_bytes() == data and not (out / "resume.bin.part").exists()


def test_a_resumed_download_whose_start_differs_is_refused(live: FileDockServer, tmp_path: Path) -> None:
    """Only the missing bytes are fetched: a wrong start shows up in the SHA-256 check."""
    data = random_file(tmp_path / "wrong.bin", MiB)
    [uploaded] = ok_json(live, "upload", str(tmp_path / "wrong.bin"))
    target = tmp_path / "wrong-copy.bin"
    (tmp_path / "wrong-copy.bin.part").write_bytes(b"x" * 1000)
    done = files_cli(live, "download", uploaded["id"], "-o", str(target))
    assert done.returncode == 1 and "SHA-256" in done.stderr and done.stderr.count("\n") == 1
    assert not target.exists() and not (tmp_path / "wrong-copy.bin.part").exists()
    assert files_cli(live, "download", uploaded["id"], "-o", str(target)).returncode == 0
    assert target.read_bytes() == data


def test_ls_info_and_rm(live: FileDockServer, tmp_path: Path) -> None:
    random_file(tmp_path / "listed.jsonl", 2048)
    [uploaded] = ok_json(live, "upload", "--purpose", "evals", str(tmp_path / "listed.jsonl"))
    table = files_cli(live, "ls", "--purpose", "evals")
    assert table.returncode == 0, table.stderr
    header, row = table.stdout.splitlines()[:2]
    assert header.split() == ["ID", "NAME", "SIZE", "PURPOSE", "CREATED", "EXPIRES"]
    assert row.split()[:5] == [uploaded["id"], "listed.jsonl", "2.0", "KiB", "evals"]
    assert ok_json(live, "info", uploaded["id"])["bytes"] == 2048
    assert [f["id"] for f in ok_json(live, "ls", "--limit", "1")] == [uploaded["id"]]
    assert ok_json(live, "rm", uploaded["id"]) == [{"id": uploaded["id"], "object": "file", "deleted": True}]
    assert uploaded["id"] not in {f["id"] for f in ok_json(live, "ls", "--limit", "1000")}


def test_pending_uploads_are_listed_with_their_bytes_and_cancelled(live: FileDockServer) -> None:
    auth = {"authorization": f"Bearer {ALPHA}"}
    body = {"filename": "pending.bin", "bytes": 1000, "purpose": "user_data", "mime_type": "text/plain"}
    upload = loopback.post(f"{live.openai_url}/uploads", json=body, headers=auth).json()
    parts_url = f"{live.openai_url}/uploads/{upload['id']}/parts"
    part = loopback.post(parts_url, files={"data": b"a" * 300}, headers=auth)
    assert part.status_code == 200
    listed = {u["id"]: u for u in ok_json(live, "uploads")}
    assert listed[upload["id"]]["received_bytes"] == 300 and listed[upload["id"]]["part_count"] == 1
    assert upload["id"] not in {u["id"] for u in ok_json(live, "uploads", key=BETA)}  # another project's
    assert "pending.bin" in files_cli(live, "uploads").stdout
    assert ok_json(live, "uploads", "cancel", upload["id"])[0]["status"] == "cancelled"
    assert upload["id"] not in {u["id"] for u in ok_json(live, "uploads")}
    assert live.sql("SELECT count(*) FROM upload_parts WHERE upload_id = ?", upload["id"]) == [(0,)]


@pytest.mark.parametrize(
    ("args", "key", "expected"),
    [
        pytest.param(("info", "file-AAAAAAAAAAAAAAAAAAAAAAAA"), ALPHA, "No such File", id="unknown-id"),
        pytest.param(("ls",), "sk-wrong-key-for-files", "--api-key", id="wrong-key"),
        pytest.param(("upload", "/nonexistent/x.bin"), ALPHA, "No such file", id="missing-path"),
    ],
)
def test_errors_are_one_line_and_exit_non_zero(
    live: FileDockServer, args: tuple[str, ...], key: str, expected: str
) -> None:
    done = files_cli(live, *args, key=key)
    assert done.returncode != 0 and done.stdout == ""
    assert expected in done.stderr and done.stderr.count("\n") == 1, done.stderr


def test_unreachable_server_says_how_to_point_at_one() -> None:
    env = clean_environment()
    done = subprocess.run(
        [FILEDOCK_BIN, "files", "ls", "--url", "http://127.0.0.1:9"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 1 and "FILEDOCK_URL" in done.stderr and done.stderr.count("\n") == 1
