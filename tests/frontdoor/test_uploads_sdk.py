"""The Uploads API through the official openai SDK and raw httpx (spec §2.7-2.10, §8 tests 19-25).

Runs under openai 3.x and 2.x, so it imports only the standard library, pytest, httpx, openai
and tests.servers. State the API cannot reach (an Upload's `expires_at`, leftover Part rows) is
arranged and inspected through the server's database (SQLite or PostgreSQL) with `server.sql`.
"""

import asyncio
import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import openai
import pytest
from openai.types import Upload

from tests.servers import FileDockServer, wait_until

MiB = 1024 * 1024
PART_LIMIT = 64 * MiB
EIGHT_GiB = 8 * 1024 * MiB
SDK_UPLOAD_LOGGER = "openai.resources.uploads.uploads"


def start_upload(
    client: openai.OpenAI, size: int, *, purpose: str = "user_data", filename: str = "u.bin"
) -> Upload:
    return client.uploads.create(
        bytes=size,
        filename=filename,
        mime_type="application/octet-stream",
        purpose=purpose,  # type: ignore[arg-type]
    )


def add_parts(client: openai.OpenAI, upload_id: str, *chunks: bytes) -> list[str]:
    return [client.uploads.parts.create(upload_id=upload_id, data=chunk).id for chunk in chunks]


def query(server: FileDockServer, sql: str, *params: object) -> list[tuple[object, ...]]:
    return server.sql(sql, *params)


def backdate(server: FileDockServer, upload_id: str) -> None:
    """Put the Upload's expiry two hours in the past, as if it had been abandoned."""
    server.sql("UPDATE uploads SET expires_at = expires_at - 7200 WHERE id = ?", upload_id)


def upload_status(server: FileDockServer, upload_id: str) -> object:
    return query(server, "SELECT status FROM uploads WHERE id = ?", upload_id)[0][0]


def part_rows(server: FileDockServer, upload_id: str) -> int:
    (count,) = query(server, "SELECT count(*) FROM upload_parts WHERE upload_id = ?", upload_id)[0]
    return int(str(count))


@pytest.fixture
def private_client(
    make_server: Callable[..., FileDockServer],
) -> Iterator[tuple[FileDockServer, openai.OpenAI]]:
    """A client of a server of its own, so its blob directory holds only this test's bytes."""
    server = make_server()
    with openai.OpenAI(base_url=server.openai_url, api_key="k", max_retries=0) as sdk:
        yield server, sdk


# --- create -----------------------------------------------------------------------------------


def test_create_upload_is_pending_for_an_hour(client: openai.OpenAI) -> None:
    upload = start_upload(client, 3000, filename="big.bin")
    assert upload.id.startswith("upload_") and len(upload.id) == len("upload_") + 24
    assert (upload.object, upload.status, upload.file) == ("upload", "pending", None)
    assert (upload.bytes, upload.filename, upload.purpose) == (3000, "big.bin", "user_data")
    assert upload.expires_at == upload.created_at + 3600


def test_create_upload_has_exactly_the_spec_fields(http: httpx.Client) -> None:
    body = {"bytes": 1, "filename": "a.txt", "mime_type": "text/plain", "purpose": "user_data"}
    upload = http.post("/uploads", json=body).json()
    fields = {"id", "object", "bytes", "created_at", "expires_at", "filename", "purpose", "status", "file"}
    assert set(upload) == fields


@pytest.mark.parametrize("missing", ["bytes", "filename", "mime_type", "purpose"])
def test_create_upload_without_a_field_is_400(http: httpx.Client, missing: str) -> None:
    body = {"bytes": 1, "filename": "a.txt", "mime_type": "text/plain", "purpose": "user_data"}
    del body[missing]
    error = http.post("/uploads", json=body).json()["error"]
    assert (error["param"], error["code"]) == (missing, "missing_required_parameter")


@pytest.mark.parametrize(
    ("size", "code"),
    [
        pytest.param(-1, "integer_below_min_value", id="negative"),
        pytest.param(EIGHT_GiB + 1, "integer_above_max_value", id="over-8-GiB"),
    ],
)
def test_create_upload_with_bytes_out_of_range_is_400(client: openai.OpenAI, size: int, code: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        start_upload(client, size)
    assert (caught.value.param, caught.value.code) == ("bytes", code)


def test_create_upload_of_exactly_8_gib_is_accepted(client: openai.OpenAI) -> None:
    assert start_upload(client, EIGHT_GiB).bytes == EIGHT_GiB


def test_create_batch_upload_over_the_batch_limit_is_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        start_upload(client, 200 * MiB + 1, purpose="batch", filename="b.jsonl")
    assert caught.value.param == "bytes"


@pytest.mark.parametrize(
    ("purpose", "filename"),
    [
        pytest.param("nope", "a.txt", id="unknown-purpose"),
        pytest.param("batch", "a.txt", id="batch-not-jsonl"),
    ],
)
def test_create_upload_the_purpose_refuses_is_400(client: openai.OpenAI, purpose: str, filename: str) -> None:
    with pytest.raises(openai.BadRequestError):
        start_upload(client, 10, purpose=purpose, filename=filename)


def test_create_upload_with_a_body_that_is_not_json_is_400(http: httpx.Client) -> None:
    response = http.post("/uploads", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 400


def test_upload_expires_after_applies_to_the_file(client: openai.OpenAI) -> None:
    upload = client.uploads.create(
        bytes=2,
        filename="e.txt",
        mime_type="text/plain",
        purpose="user_data",
        expires_after={"anchor": "created_at", "seconds": 3600},
    )
    done = client.uploads.complete(upload_id=upload.id, part_ids=add_parts(client, upload.id, b"hi"))
    assert done.file is not None
    assert done.file.expires_at == done.file.created_at + 3600


# --- parts ------------------------------------------------------------------------------------


def test_part_names_its_upload(client: openai.OpenAI) -> None:
    upload = start_upload(client, 3)
    part = client.uploads.parts.create(upload_id=upload.id, data=b"abc")
    assert part.id.startswith("part_") and len(part.id) == len("part_") + 24
    assert (part.object, part.upload_id) == ("upload.part", upload.id)
    assert part.created_at >= upload.created_at


def test_part_of_exactly_64_mib_is_accepted(client: openai.OpenAI) -> None:
    upload = start_upload(client, PART_LIMIT)
    part = client.uploads.parts.create(upload_id=upload.id, data=bytes(PART_LIMIT))
    assert part.upload_id == upload.id


def test_part_of_64_mib_plus_one_is_400(client: openai.OpenAI, server: FileDockServer) -> None:
    upload = start_upload(client, 2 * PART_LIMIT)
    with pytest.raises(openai.BadRequestError) as caught:
        client.uploads.parts.create(upload_id=upload.id, data=bytes(PART_LIMIT + 1))
    assert (caught.value.param, caught.value.code) == ("data", "file_too_large")
    assert part_rows(server, upload.id) == 0
    # A block write still in flight when the limit is crossed removes its temporary file as soon
    # as it ends (LocalBlobWriter.abort), which can be just after the 400 has gone out.
    assert wait_until(lambda: server.leftovers() == [], seconds=5)


def test_part_beyond_the_declared_bytes_is_400(client: openai.OpenAI, server: FileDockServer) -> None:
    upload = start_upload(client, 5)
    add_parts(client, upload.id, b"abc")
    with pytest.raises(openai.BadRequestError) as caught:
        client.uploads.parts.create(upload_id=upload.id, data=b"def")
    assert caught.value.param == "data"
    assert part_rows(server, upload.id) == 1


def test_part_request_without_data_is_400(client: openai.OpenAI, http: httpx.Client) -> None:
    upload = start_upload(client, 3)
    response = http.post(f"/uploads/{upload.id}/parts", files={"other": ("x", b"abc")})
    assert (response.status_code, response.json()["error"]["param"]) == (400, "data")


# --- complete ---------------------------------------------------------------------------------


def test_complete_joins_parts_in_listed_order(client: openai.OpenAI) -> None:
    upload = start_upload(client, 9, filename="joined.txt")
    third, first, second = add_parts(client, upload.id, b"ghi", b"abc", b"def")
    done = client.uploads.complete(upload_id=upload.id, part_ids=[first, second, third])
    assert done.status == "completed" and done.file is not None
    assert (done.file.bytes, done.file.filename, done.file.status) == (9, "joined.txt", "processed")
    assert client.files.content(done.file.id).content == b"abcdefghi"


def test_completed_upload_file_is_an_ordinary_file(client: openai.OpenAI) -> None:
    upload = start_upload(client, 2)
    done = client.uploads.complete(upload_id=upload.id, part_ids=add_parts(client, upload.id, b"ok"))
    assert done.file is not None
    assert client.files.retrieve(done.file.id).bytes == 2
    assert done.file.id in {f.id for f in client.files.list(purpose="user_data")}
    assert client.files.delete(done.file.id).deleted is True


def test_unlisted_parts_are_left_out_and_freed(private_client: tuple[FileDockServer, openai.OpenAI]) -> None:
    server, client = private_client
    upload = start_upload(client, 3)
    # Parts may not outgrow the declared bytes (spec §2.8), so only an empty Part can be left out.
    kept, _orphan = add_parts(client, upload.id, b"abc", b"")
    done = client.uploads.complete(upload_id=upload.id, part_ids=[kept])
    assert part_rows(server, upload.id) == 0
    assert len(server.blob_files()) == 1  # the File's blob only
    assert done.file is not None and client.files.content(done.file.id).content == b"abc"


def test_complete_with_the_right_md5_succeeds(client: openai.OpenAI) -> None:
    upload = start_upload(client, 5)
    md5 = hashlib.md5(b"hello").hexdigest().upper()  # compared case-insensitively
    done = client.uploads.complete(
        upload_id=upload.id, part_ids=add_parts(client, upload.id, b"hello"), md5=md5
    )
    assert done.status == "completed"


def test_complete_with_a_wrong_md5_is_400_on_md5(client: openai.OpenAI) -> None:
    upload = start_upload(client, 5)
    part_ids = add_parts(client, upload.id, b"hello")
    with pytest.raises(openai.BadRequestError) as caught:
        client.uploads.complete(upload_id=upload.id, part_ids=part_ids, md5="0" * 32)
    assert caught.value.param == "md5"


def test_upload_stays_open_after_a_failed_complete(client: openai.OpenAI) -> None:
    upload = start_upload(client, 5)
    part_ids = add_parts(client, upload.id, b"hello")
    with pytest.raises(openai.BadRequestError):
        client.uploads.complete(upload_id=upload.id, part_ids=part_ids, md5="0" * 32)
    assert client.uploads.complete(upload_id=upload.id, part_ids=part_ids).status == "completed"


def test_complete_twice_returns_the_same_upload(client: openai.OpenAI) -> None:
    upload = start_upload(client, 3)
    part_ids = add_parts(client, upload.id, b"abc")
    first = client.uploads.complete(upload_id=upload.id, part_ids=part_ids)
    second = client.uploads.complete(upload_id=upload.id, part_ids=part_ids)
    assert first.file is not None and second.file is not None
    assert second.file.id == first.file.id
    assert second.model_dump() == first.model_dump()


def test_complete_again_with_other_part_ids_is_400(client: openai.OpenAI) -> None:
    upload = start_upload(client, 3)
    first, empty = add_parts(client, upload.id, b"abc", b"")
    client.uploads.complete(upload_id=upload.id, part_ids=[first])
    with pytest.raises(openai.BadRequestError) as caught:
        client.uploads.complete(upload_id=upload.id, part_ids=[first, empty])
    assert "already completed" in caught.value.message


def test_complete_with_a_part_of_another_upload_is_400(client: openai.OpenAI) -> None:
    upload, other = start_upload(client, 3), start_upload(client, 3)
    foreign = add_parts(client, other.id, b"abc")
    with pytest.raises(openai.BadRequestError) as caught:
        client.uploads.complete(upload_id=upload.id, part_ids=foreign)
    assert caught.value.param == "part_ids"
    assert "does not belong" in caught.value.message


def test_complete_with_an_unknown_part_id_is_400(client: openai.OpenAI) -> None:
    upload = start_upload(client, 3)
    with pytest.raises(openai.BadRequestError) as caught:
        client.uploads.complete(upload_id=upload.id, part_ids=["part_doesnotexist"])
    assert caught.value.param == "part_ids"


def test_complete_with_a_duplicate_part_id_is_400(client: openai.OpenAI) -> None:
    upload = start_upload(client, 6)
    part_ids = add_parts(client, upload.id, b"abc")
    with pytest.raises(openai.BadRequestError) as caught:
        client.uploads.complete(upload_id=upload.id, part_ids=part_ids * 2)
    assert caught.value.param == "part_ids"
    assert "Duplicate" in caught.value.message


def test_complete_with_parts_short_of_the_bytes_is_400(client: openai.OpenAI) -> None:
    upload = start_upload(client, 3000)
    part_ids = add_parts(client, upload.id, bytes(1000), bytes(1999))
    with pytest.raises(openai.BadRequestError) as caught:
        client.uploads.complete(upload_id=upload.id, part_ids=part_ids)
    assert caught.value.param == "part_ids"
    assert "2999" in caught.value.message


def test_complete_runs_the_purpose_content_check(client: openai.OpenAI) -> None:
    upload = start_upload(client, 9, purpose="batch", filename="b.jsonl")
    part_ids = add_parts(client, upload.id, b"not json\n")
    with pytest.raises(openai.BadRequestError):
        client.uploads.complete(upload_id=upload.id, part_ids=part_ids)


def test_complete_after_cancel_is_400(client: openai.OpenAI) -> None:
    upload = start_upload(client, 3)
    part_ids = add_parts(client, upload.id, b"abc")
    client.uploads.cancel(upload.id)
    with pytest.raises(openai.BadRequestError) as caught:
        client.uploads.complete(upload_id=upload.id, part_ids=part_ids)
    assert "cancelled" in caught.value.message


# --- cancel -----------------------------------------------------------------------------------


def test_cancel_returns_the_cancelled_upload(client: openai.OpenAI) -> None:
    upload = start_upload(client, 3)
    cancelled = client.uploads.cancel(upload.id)
    assert (cancelled.id, cancelled.status, cancelled.file) == (upload.id, "cancelled", None)


def test_cancel_twice_returns_200_both_times(client: openai.OpenAI) -> None:
    upload = start_upload(client, 3)
    client.uploads.cancel(upload.id)
    assert client.uploads.cancel(upload.id).status == "cancelled"


def test_cancel_with_an_empty_json_body_is_accepted(client: openai.OpenAI, http: httpx.Client) -> None:
    upload = start_upload(client, 3)
    headers = {"content-type": "application/json", "content-length": "0"}
    response = http.post(f"/uploads/{upload.id}/cancel", headers=headers)
    assert (response.status_code, response.json()["status"]) == (200, "cancelled")


def test_cancel_after_complete_is_400(client: openai.OpenAI) -> None:
    upload = start_upload(client, 3)
    client.uploads.complete(upload_id=upload.id, part_ids=add_parts(client, upload.id, b"abc"))
    with pytest.raises(openai.BadRequestError) as caught:
        client.uploads.cancel(upload.id)
    assert "completed" in caught.value.message


def test_part_after_cancel_is_400(client: openai.OpenAI, server: FileDockServer) -> None:
    upload = start_upload(client, 3)
    client.uploads.cancel(upload.id)
    with pytest.raises(openai.BadRequestError):
        client.uploads.parts.create(upload_id=upload.id, data=b"abc")
    assert part_rows(server, upload.id) == 0


def test_part_after_complete_is_400(client: openai.OpenAI) -> None:
    upload = start_upload(client, 3)
    client.uploads.complete(upload_id=upload.id, part_ids=add_parts(client, upload.id, b"abc"))
    with pytest.raises(openai.BadRequestError):
        client.uploads.parts.create(upload_id=upload.id, data=b"abc")


def test_cancel_frees_every_part(private_client: tuple[FileDockServer, openai.OpenAI]) -> None:
    server, client = private_client
    upload = start_upload(client, 10)
    add_parts(client, upload.id, b"abcd", b"efgh")
    client.uploads.cancel(upload.id)
    assert part_rows(server, upload.id) == 0
    assert server.blob_files() == []
    assert server.leftovers() == []


# --- unknown and expired uploads ---------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda c: c.uploads.parts.create(upload_id="upload_nope", data=b"x"), id="part"),
        pytest.param(lambda c: c.uploads.complete(upload_id="upload_nope", part_ids=[]), id="complete"),
        pytest.param(lambda c: c.uploads.cancel("upload_nope"), id="cancel"),
        pytest.param(lambda c: c.uploads.cancel("file-abc"), id="not-an-upload-id"),
    ],
)
def test_unknown_upload_is_404(client: openai.OpenAI, call: Callable[[openai.OpenAI], object]) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        call(client)
    assert caught.value.param == "upload_id"


def test_expired_upload_refuses_parts(client: openai.OpenAI, server: FileDockServer) -> None:
    upload = start_upload(client, 6)
    backdate(server, upload.id)
    with pytest.raises(openai.BadRequestError) as caught:
        client.uploads.parts.create(upload_id=upload.id, data=b"abc")
    assert "expired" in caught.value.message


def test_expired_upload_refuses_complete(client: openai.OpenAI, server: FileDockServer) -> None:
    upload = start_upload(client, 3)
    part_ids = add_parts(client, upload.id, b"abc")
    backdate(server, upload.id)
    with pytest.raises(openai.BadRequestError) as caught:
        client.uploads.complete(upload_id=upload.id, part_ids=part_ids)
    assert "expired" in caught.value.message


def test_expired_upload_is_reported_expired(client: openai.OpenAI, server: FileDockServer) -> None:
    upload = start_upload(client, 3)
    backdate(server, upload.id)
    with pytest.raises(openai.BadRequestError) as caught:
        client.uploads.cancel(upload.id)
    body = caught.value.body  # the inner error object in both SDK versions; `message` differs
    assert isinstance(body, dict) and body["message"] == f"Upload {upload.id} has expired."
    assert upload_status(server, upload.id) == "expired"


def test_expiry_on_access_frees_every_part(private_client: tuple[FileDockServer, openai.OpenAI]) -> None:
    server, client = private_client
    upload = start_upload(client, 6)
    part_ids = add_parts(client, upload.id, b"abc")
    backdate(server, upload.id)
    with pytest.raises(openai.BadRequestError):
        client.uploads.complete(upload_id=upload.id, part_ids=part_ids)
    assert part_rows(server, upload.id) == 0
    assert server.blob_files() == []


def test_sweeper_expires_abandoned_uploads(make_server: Callable[..., FileDockServer]) -> None:
    server = make_server(sweep_interval_seconds="0.2")
    with openai.OpenAI(base_url=server.openai_url, api_key="k", max_retries=0) as client:
        upload = start_upload(client, 6)
        add_parts(client, upload.id, b"abc", b"def")
    backdate(server, upload.id)
    assert wait_until(lambda: upload_status(server, upload.id) == "expired")
    assert part_rows(server, upload.id) == 0
    # The parts' blobs go after the rows (a crash leaves gc an orphan, never a row without bytes).
    assert wait_until(lambda: server.blob_files() == [])
    assert server.leftovers() == []


# --- the SDK helper and the async client --------------------------------------------------------


def test_upload_file_chunked_sends_a_100_mib_file_in_two_parts(
    client: openai.OpenAI, server: FileDockServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "paper.pdf"  # assistants accepts only documented extensions
    path.write_bytes(os.urandom(100 * MiB))
    with caplog.at_level(logging.INFO, logger=SDK_UPLOAD_LOGGER):
        done = client.uploads.upload_file_chunked(
            file=path, mime_type="application/octet-stream", purpose="assistants"
        )
    assert done.status == "completed" and done.file is not None
    assert done.file.bytes == 100 * MiB
    assert [r.getMessage().startswith("Uploaded part") for r in caplog.records].count(True) == 2
    stored = json.loads(str(query(server, "SELECT part_ids FROM uploads WHERE id = ?", done.id)[0][0]))
    assert len(stored) == 2
    with client.files.with_streaming_response.content(done.file.id) as response:
        digest = hashlib.sha256()
        for chunk in response.iter_bytes():
            digest.update(chunk)
    assert digest.hexdigest() == hashlib.sha256(path.read_bytes()).hexdigest()


def test_upload_file_chunked_of_an_empty_file(client: openai.OpenAI) -> None:
    done = client.uploads.upload_file_chunked(
        file=b"", filename="empty.txt", bytes=0, mime_type="text/plain", purpose="user_data"
    )
    assert done.status == "completed" and done.file is not None
    assert done.file.bytes == 0
    assert client.files.content(done.file.id).content == b""


def test_upload_file_chunked_with_the_right_md5(client: openai.OpenAI) -> None:
    data = os.urandom(10_000)
    done = client.uploads.upload_file_chunked(
        file=data,
        filename="m.bin",
        bytes=len(data),
        mime_type="application/octet-stream",
        purpose="user_data",
        part_size=4096,
        md5=hashlib.md5(data).hexdigest(),
    )
    assert done.file is not None and client.files.content(done.file.id).content == data


def test_upload_file_chunked_with_a_wrong_md5_is_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.uploads.upload_file_chunked(
            file=b"abc",
            filename="m.bin",
            bytes=3,
            mime_type="application/octet-stream",
            purpose="user_data",
            md5=hashlib.md5(b"abd").hexdigest(),
        )
    assert caught.value.param == "md5"


async def test_parallel_parts_in_reverse_order_assemble_in_listed_order(server: FileDockServer) -> None:
    chunks = [os.urandom(100_000) for _ in range(3)]
    async with openai.AsyncOpenAI(base_url=server.openai_url, api_key="k", max_retries=0) as client:
        upload = await client.uploads.create(
            bytes=300_000, filename="p.bin", mime_type="application/octet-stream", purpose="user_data"
        )
        parts = await asyncio.gather(
            *(client.uploads.parts.create(upload_id=upload.id, data=c) for c in reversed(chunks))
        )
        part_ids = [p.id for p in reversed(parts)]
        done = await client.uploads.complete(upload_id=upload.id, part_ids=part_ids)
        assert done.file is not None
        assert (await client.files.content(done.file.id)).content == b"".join(chunks)


def test_strict_response_validation_accepts_upload_responses(server: FileDockServer) -> None:
    with openai.OpenAI(
        base_url=server.openai_url, api_key="k", max_retries=0, _strict_response_validation=True
    ) as strict:
        upload = start_upload(strict, 3)
        part_ids = add_parts(strict, upload.id, b"abc")
        assert strict.uploads.complete(upload_id=upload.id, part_ids=part_ids).status == "completed"
        assert strict.uploads.cancel(start_upload(strict, 1).id).status == "cancelled"
