"""Two FileDock replicas on one PostgreSQL database and one S3 bucket: any request may land on either."""

import asyncio
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from alembic.script import ScriptDirectory

from app.metadata.migrate import alembic_config
from tests import loopback, scaleout
from tests.servers import FILEDOCK_BIN, FileDockServer, clean_environment


@pytest.fixture(scope="module")
def pair(
    services: scaleout.ScaleOutBackend, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[FileDockServer, FileDockServer]]:
    """Two replicas on one database and one bucket prefix, shared by this module's tests."""
    directory = tmp_path_factory.mktemp("pair")
    settings = services.settings_for(directory / "shared-state")
    first = FileDockServer(directory / "first", settings=dict(settings)).start()
    second = FileDockServer(directory / "second", settings=dict(settings)).start()
    yield first, second
    first.stop()
    second.stop()


def sdk(server: FileDockServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.openai_url, api_key="k", max_retries=0)


def test_file_made_on_one_replica_is_listed_read_and_deleted_on_the_other(
    pair: tuple[FileDockServer, FileDockServer],
) -> None:
    first, second = pair
    with sdk(first) as a, sdk(second) as b:
        made = a.files.create(file=("both.txt", b"0123456789" * 1000), purpose="user_data")
        assert made.id in {f.id for f in b.files.list()}
        assert b.files.content(made.id).read() == b"0123456789" * 1000
        ranged = loopback.get(f"{second.openai_url}/files/{made.id}/content", headers={"Range": "bytes=5-14"})
        assert (ranged.status_code, ranged.content) == (206, b"5678901234")
        assert b.files.delete(made.id).deleted
        assert loopback.get(f"{first.openai_url}/files/{made.id}").status_code == 404


def test_upload_parts_spread_over_both_replicas_assemble_in_order(
    pair: tuple[FileDockServer, FileDockServer],
) -> None:
    first, second = pair
    chunks = [bytes([65 + i]) * 300_000 for i in range(4)]
    with sdk(first) as a, sdk(second) as b:
        upload = a.uploads.create(
            bytes=1_200_000, filename="spread.txt", mime_type="text/plain", purpose="user_data"
        )
        part_ids = [
            (a, b)[i % 2].uploads.parts.create(upload_id=upload.id, data=c).id for i, c in enumerate(chunks)
        ]
        done = b.uploads.complete(upload_id=upload.id, part_ids=part_ids)
        assert done.file is not None
        assert a.files.content(done.file.id).read() == b"".join(chunks)


def test_large_file_streams_through_s3_multipart_on_either_replica(
    pair: tuple[FileDockServer, FileDockServer],
) -> None:
    first, second = pair
    body = os.urandom(20 * 1024 * 1024)  # several S3 parts; random, so a misplaced range shows
    with sdk(first) as a:
        made = a.files.create(file=("big.bin", body), purpose="user_data")
    with loopback.stream("GET", f"{second.openai_url}/files/{made.id}/content", timeout=60) as response:
        assert b"".join(response.iter_bytes()) == body
    tail = loopback.get(f"{second.openai_url}/files/{made.id}/content", headers={"Range": "bytes=-1000"})
    assert tail.content == body[-1000:]
    middle = loopback.get(  # large: read over plain HTTP from S3 (app/blobs/s3_reads.py)
        f"{second.openai_url}/files/{made.id}/content", headers={"Range": "bytes=4097-15000000"}, timeout=60
    )
    assert middle.status_code == 206 and middle.content == body[4097:15000001]


async def test_concurrent_deletes_on_both_replicas_have_one_winner(
    pair: tuple[FileDockServer, FileDockServer],
) -> None:
    first, second = pair
    with sdk(first) as a:
        file_id = a.files.create(file=("race.txt", b"x"), purpose="user_data").id
    async with httpx.AsyncClient(timeout=30) as client:
        responses = await asyncio.gather(
            *(client.delete(f"{s.openai_url}/files/{file_id}") for s in (first, second, first, second))
        )
    assert sorted(r.status_code for r in responses) == [200, 404, 404, 404]


def test_migrate_from_several_replicas_at_once(services: scaleout.ScaleOutBackend, tmp_path: Path) -> None:
    database = services.postgres.create_database()
    env = clean_environment(database_url=services.postgres.url(database), data_dir=str(tmp_path))
    runs = [
        subprocess.Popen([FILEDOCK_BIN, "migrate"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for _ in range(4)
    ]
    outputs = [run.communicate(timeout=120)[0].decode() for run in runs]
    assert [run.returncode for run in runs] == [0, 0, 0, 0], outputs
    head = ScriptDirectory.from_config(alembic_config("")).get_current_head()
    assert services.postgres.psql("SELECT version_num FROM alembic_version", database) == head
