"""`filedock backup` while clients upload and delete, then `filedock restore` into a new data dir:
the restored store verifies clean and a server on it serves every file byte-exact.

Only the standard library, pytest, httpx and tests helpers are imported; the CLI comes from
FILEDOCK_BIN, as the server does.
"""

import os
import threading
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests import loopback
from tests.frontdoor.tenancy_helpers import QUICK, Cli
from tests.servers import FileDockServer, clean_environment

pytestmark = pytest.mark.embedded_only("backup and restore handle SQLite and local blobs")


class Traffic(threading.Thread):
    """Uploads (and deletes every third of) small files until stopped; remembers what it sent."""

    def __init__(self, server: FileDockServer) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.sent: dict[str, bytes] = {}
        self.stop = threading.Event()
        self.failures: list[str] = []

    def run(self) -> None:
        with httpx.Client(base_url=self.server.openai_url, timeout=30) as http:
            while not self.stop.is_set():
                data = os.urandom(4096 + len(self.sent))
                response = http.post("/files", files={"file": ("t.bin", data)}, data={"purpose": "user_data"})
                if response.status_code != 200:
                    self.failures.append(response.text)
                    continue
                self.sent[response.json()["id"]] = data
                if len(self.sent) % 3 == 0:  # delete the one before: deletes race the backup too
                    http.delete(f"/files/{list(self.sent)[-2]}")


def test_backup_under_uploads_restores_byte_exact(
    make_server: Callable[..., FileDockServer], tmp_path: Path
) -> None:
    server = make_server(**QUICK)
    before = Traffic(server)
    before.stop.set()  # a first batch, all of which the backup must hold
    with httpx.Client(base_url=server.openai_url, timeout=30) as http:
        for n in range(20):
            data = os.urandom(50_000 + n)
            created = http.post("/files", files={"file": (f"{n}.bin", data)}, data={"purpose": "user_data"})
            before.sent[created.json()["id"]] = data
    traffic = Traffic(server)
    traffic.start()
    try:
        backed_up = Cli.of(server).run("backup", str(tmp_path / "backup"))
    finally:
        traffic.stop.set()
        traffic.join()
    assert traffic.failures == [] and len(traffic.sent) > 0
    assert "backup:" in backed_up.stdout

    restored_dir = tmp_path / "restored"
    cli = Cli(restored_dir, clean_environment(**QUICK))
    restored = cli.run("restore", str(tmp_path / "backup"))
    assert "restore:" in restored.stdout
    verified = cli.run("verify", "--deep", "--grace-seconds", "0")
    assert "no problems" in verified.stdout

    copy = make_server(data_dir=restored_dir, **QUICK)
    listed = loopback.get(f"{copy.openai_url}/files").json()["data"]
    ids = {f["id"] for f in listed}
    assert set(before.sent) <= ids  # every file that existed before the backup began
    sent = {**before.sent, **traffic.sent}
    for file_id in ids:
        assert loopback.get(f"{copy.openai_url}/files/{file_id}/content").content == sent[file_id]


def test_restore_refuses_a_data_dir_that_has_a_database(
    make_server: Callable[..., FileDockServer], tmp_path: Path
) -> None:
    server = make_server(**QUICK)
    Cli.of(server).run("backup", str(tmp_path / "b"))
    refused = Cli.of(server).run("restore", str(tmp_path / "b"), check=False)
    assert refused.returncode == 1 and "new, empty data dir" in refused.stderr


def test_backup_refuses_s3_and_points_at_the_docs(tmp_path: Path) -> None:
    env = clean_environment(blob_url="s3://bucket/prefix")
    (tmp_path / "data").mkdir()
    refused = Cli(tmp_path / "data", env).run("backup", str(tmp_path / "b"), check=False)
    assert refused.returncode == 1 and "pg_dump" in refused.stderr and "docs/operations.md" in refused.stderr
    assert not (tmp_path / "b").exists()
