"""A replica SIGKILLed mid-upload leaves no visible half-file, and `filedock gc` leaves no orphan.

Orphans are counted from outside: object keys under the prefix through S3, rows through psql.
"""

import asyncio
import signal
import socket
import subprocess
import time
from collections.abc import Callable

import openai
import pytest

from app.blobs.s3 import S3BlobStore
from tests import loopback, scaleout
from tests.servers import FILEDOCK_BIN, FileDockServer, clean_environment, wait_until

BOUNDARY = "crashcrashcrash"


def prefix_of(settings: dict[str, str]) -> str:
    return settings["blob_url"].split("/", 3)[3] + "/"


def object_keys(services: scaleout.ScaleOutBackend, settings: dict[str, str]) -> set[str]:
    prefix = prefix_of(settings)
    return {k.removeprefix(prefix) for k in services.s3.keys(prefix) if "/_health/" not in k}


def row_keys(services: scaleout.ScaleOutBackend, settings: dict[str, str]) -> set[str]:
    database = settings["database_url"].rsplit("/", 1)[1]
    query = "SELECT blob_key FROM files UNION ALL SELECT blob_key FROM upload_parts"
    output = services.postgres.psql(query, database)
    return set(output.splitlines()) if output else set()


def run_gc(settings: dict[str, str], tmp_dir: str) -> str:
    env = clean_environment(**settings, data_dir=tmp_dir)
    env.update(scaleout.S3_CREDENTIALS)
    done = subprocess.run(
        [FILEDOCK_BIN, "gc", "--grace-seconds", "0"], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_sigkill_mid_upload_leaves_no_visible_file_and_gc_no_orphan(
    replicas: Callable[..., FileDockServer],
    services: scaleout.ScaleOutBackend,
    scaleout_settings: dict[str, str],
    tmp_path: object,
) -> None:
    victim, survivor = replicas(), replicas()
    with openai.OpenAI(base_url=survivor.openai_url, api_key="k", max_retries=0) as client:
        kept = client.files.create(file=("kept.txt", b"kept"), purpose="user_data")
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nuser_data\r\n'
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="cut.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    declared = len(head) + (64 << 20)
    request = (
        "POST /v1/files HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {declared}\r\n\r\n"
    ).encode()
    prefix = prefix_of(scaleout_settings)
    with socket.create_connection(("127.0.0.1", victim.port), timeout=30) as sock:
        sock.sendall(request + head)
        for _ in range(24):  # 24 MiB, slowly: past one S3 part, well short of the declared size
            sock.sendall(b"x" * (1 << 20))
            time.sleep(0.02)
        assert wait_until(lambda: services.s3.unfinished_uploads(prefix) != [], seconds=20), (
            "no multipart upload began"
        )
        victim.stop(signal.SIGKILL)

    with openai.OpenAI(base_url=survivor.openai_url, api_key="k", max_retries=0) as client:
        assert [f.filename for f in client.files.list()] == ["kept.txt"]  # no half-file is visible
    kept_blob = kept_key(kept.id, services, scaleout_settings)
    assert object_keys(services, scaleout_settings) == {kept_blob}

    run_gc(scaleout_settings, str(tmp_path))

    assert object_keys(services, scaleout_settings) == row_keys(services, scaleout_settings) == {kept_blob}
    assert loopback.get(f"{survivor.openai_url}/files/{kept.id}/content").content == b"kept"


def kept_key(file_id: str, services: scaleout.ScaleOutBackend, settings: dict[str, str]) -> str:
    database = settings["database_url"].rsplit("/", 1)[1]
    return services.postgres.psql(f"SELECT blob_key FROM files WHERE id = '{file_id}'", database)


def test_gc_removes_a_blob_no_row_names_and_keeps_the_rest(
    replicas: Callable[..., FileDockServer],
    services: scaleout.ScaleOutBackend,
    scaleout_settings: dict[str, str],
    tmp_path: object,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in scaleout.S3_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    server = replicas()
    with openai.OpenAI(base_url=server.openai_url, api_key="k", max_retries=0) as client:
        kept = client.files.create(file=("kept.txt", b"kept"), purpose="user_data")
        upload = client.uploads.create(bytes=2, filename="u.txt", mime_type="text/plain", purpose="user_data")
        client.uploads.parts.create(upload_id=upload.id, data=b"ab")
    # What a replica killed between writing a blob and recording its row leaves behind:
    asyncio.run(put_orphan(services, scaleout_settings, "OrphanBlobWithoutAnyRow0"))
    assert "OrphanBlobWithoutAnyRow0" in object_keys(services, scaleout_settings)

    output = run_gc(scaleout_settings, str(tmp_path))

    assert "1 unreferenced blobs removed" in output, output
    assert object_keys(services, scaleout_settings) == row_keys(services, scaleout_settings)
    assert len(row_keys(services, scaleout_settings)) == 2  # the file's blob and the open Upload's Part
    assert loopback.get(f"{server.openai_url}/files/{kept.id}/content").content == b"kept"


async def put_orphan(services: scaleout.ScaleOutBackend, settings: dict[str, str], key: str) -> None:
    store = S3BlobStore(
        services.s3.bucket, prefix_of(settings), endpoint_url=services.s3.endpoint, force_path_style=True,
        region="us-east-1",
    )  # fmt: skip
    await store.put_bytes(key, b"debris")
