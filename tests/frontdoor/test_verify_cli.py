"""`filedock verify` as a subprocess against a live server's stores (SQLite and disk, or PostgreSQL
and S3 in the scale-out run): damage made behind the server's back is found, `--deep` finds
what only the bytes show, and `--repair` leaves a store that verifies clean, with list cursors
on repaired files still working.

Only the standard library, pytest, httpx and tests helpers are imported; the CLI comes from
FILEDOCK_BIN, as the server does.
"""

import subprocess
from collections.abc import Callable

from tests import loopback
from tests.frontdoor.tenancy_helpers import QUICK, Cli
from tests.servers import FileDockServer

ORPHAN = "plantedOrphanBlob0000000"


def upload(server: FileDockServer, data: bytes, name: str) -> str:
    response = loopback.post(
        f"{server.openai_url}/files", files={"file": (name, data)}, data={"purpose": "user_data"}, timeout=30
    )
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def blob_key(server: FileDockServer, file_id: str) -> str:
    [(key,)] = server.sql("SELECT blob_key FROM files WHERE id = ?", file_id)
    return str(key)


def findings(done: subprocess.CompletedProcess[str]) -> dict[str, str]:
    """{subject: kind} of the finding lines verify printed."""
    lines = [line.split() for line in done.stdout.splitlines() if not line.startswith("verify:")]
    return {words[1]: words[0] for words in lines}


def stray_part(server: FileDockServer) -> str:
    """A Part whose Upload is finished: an Upload cancelled in the database without freeing it."""
    body = {"filename": "p.bin", "bytes": 10, "purpose": "user_data", "mime_type": "text/plain"}
    upload_id = loopback.post(f"{server.openai_url}/uploads", json=body).json()["id"]
    part = loopback.post(f"{server.openai_url}/uploads/{upload_id}/parts", files={"data": b"12345"}).json()
    server.sql("UPDATE uploads SET status = 'cancelled' WHERE id = ?", upload_id)
    return str(part["id"])


def test_verify_finds_damage_and_repair_leaves_a_clean_store(
    make_server: Callable[..., FileDockServer],
) -> None:
    server = make_server(**QUICK)
    cli = Cli.of(server)
    missing, resized, altered, healthy = (
        upload(server, bytes([n]) * 1000, f"{n}.txt") for n in range(4)
    )  # fmt: skip
    clean = cli.run("verify", "--deep")
    assert "no problems" in clean.stdout and findings(clean) == {}

    server.delete_blob(blob_key(server, missing))
    server.put_blob(blob_key(server, resized), b"short")
    server.put_blob(blob_key(server, altered), b"z" * 1000)  # same size: only --deep sees it
    server.put_blob(ORPHAN, b"nobody names me")
    part = stray_part(server)

    shallow = cli.run("verify", "--grace-seconds", "0", check=False)
    assert shallow.returncode == 1 and "--repair" in shallow.stderr
    expected = {missing: "missing-blob", resized: "size-mismatch", ORPHAN: "orphan-blob", part: "stray-part"}
    assert findings(shallow) == expected
    young = cli.run("verify", check=False)  # the orphan is younger than the default grace
    assert ORPHAN not in findings(young) and "younger than the grace" in young.stdout
    deep = cli.run("verify", "--deep", "--grace-seconds", "0", check=False)
    assert findings(deep) == {**expected, altered: "sha256-mismatch"}

    repaired = cli.run("verify", "--deep", "--repair", "--grace-seconds", "0")
    assert repaired.stdout.count("[repaired]") == 5
    assert cli.run("verify", "--deep", "--grace-seconds", "0").stdout.count("no problems") == 1
    for file_id in (missing, resized, altered):
        assert loopback.get(f"{server.openai_url}/files/{file_id}").status_code == 404
    listed = loopback.get(f"{server.openai_url}/files", params={"after": missing, "order": "asc"})
    assert listed.status_code == 200, listed.text  # the repaired file's tombstone keeps its cursor
    assert [f["id"] for f in listed.json()["data"]] == [healthy]
    assert loopback.get(f"{server.openai_url}/files/{healthy}/content").content == bytes([3]) * 1000
    assert server.sql("SELECT count(*) FROM upload_parts") == [(0,)]
