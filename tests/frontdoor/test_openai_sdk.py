"""The files API through the official openai SDK (run under both 3.x and 2.x by `make test`)."""

import asyncio
import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import openai
import pytest

from tests.servers import FileDockServer

THIRTY_DAYS = 2_592_000


def test_create_batch_file_from_path(client: openai.OpenAI, tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_bytes(b'{"custom_id": "1"}\n{"custom_id": "2"}\n')
    created = client.files.create(file=path, purpose="batch")
    assert created.id.startswith("file-")
    assert created.object == "file"
    assert created.bytes == path.stat().st_size
    assert created.filename == "a.jsonl"
    assert created.purpose == "batch"
    assert created.status == "processed"
    assert created.status_details is None
    assert created.expires_at == created.created_at + THIRTY_DAYS


@pytest.mark.parametrize("purpose", ["batch", "fine-tune", "evals"])
def test_bare_bytes_are_taken_for_jsonl_purposes(client: openai.OpenAI, purpose: str) -> None:
    # The SDK names a file sent as bare bytes `upload`, with no extension.
    created = client.files.create(file=b'{"a": 1}\n{"b": 2}\n', purpose=purpose)
    assert (created.filename, created.purpose) == ("upload", purpose)
    assert client.files.content(created.id).content == b'{"a": 1}\n{"b": 2}\n'


@pytest.mark.parametrize("purpose", ["batch", "fine-tune"])
def test_bare_bytes_for_jsonl_purposes_must_be_jsonl(client: openai.OpenAI, purpose: str) -> None:
    with pytest.raises(openai.BadRequestError, match="line 2 is not valid JSON"):
        client.files.create(file=b'{"a": 1}\nplain text\n', purpose=purpose)


def test_a_wrong_extension_for_batch_keeps_the_real_message(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match=r"Invalid file format for Batch API\. Must be \.jsonl"):
        client.files.create(file=("in.json", b"{}\n"), purpose="batch")


def test_user_data_never_expires_unless_asked(client: openai.OpenAI) -> None:
    plain = client.files.create(file=("a.txt", b"x"), purpose="user_data")
    assert plain.expires_at is None
    hour = client.files.create(
        file=("b.txt", b"x"), purpose="user_data", expires_after={"anchor": "created_at", "seconds": 3600}
    )
    assert hour.expires_at == hour.created_at + 3600


@pytest.mark.parametrize("seconds", [3600, THIRTY_DAYS])
def test_expires_after_bounds_are_inclusive(client: openai.OpenAI, seconds: int) -> None:
    created = client.files.create(
        file=("a.txt", b"x"), purpose="user_data", expires_after={"anchor": "created_at", "seconds": seconds}
    )
    assert created.expires_at == created.created_at + seconds


@pytest.mark.parametrize(
    ("expires_after", "param"),
    [
        pytest.param({"anchor": "created_at", "seconds": 3599}, "expires_after.seconds", id="too-short"),
        pytest.param(
            {"anchor": "created_at", "seconds": THIRTY_DAYS + 1}, "expires_after.seconds", id="too-long"
        ),
        pytest.param({"anchor": "updated_at", "seconds": 3600}, "expires_after.anchor", id="bad-anchor"),
    ],
)
def test_expires_after_out_of_range_is_400(client: openai.OpenAI, expires_after: dict, param: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.files.create(file=("a.txt", b"x"), purpose="user_data", expires_after=expires_after)
    assert caught.value.param == param


def test_unicode_and_quoted_filenames_round_trip(client: openai.OpenAI) -> None:
    for name in ["données ✓ 測試.txt", 'say "hi".txt', "back\\slash.txt"]:
        created = client.files.create(file=(name, b"x"), purpose="user_data")
        assert created.filename == name.replace("back\\", "")  # a backslash separates path parts
        assert client.files.retrieve(created.id).filename == created.filename


def test_bare_bytes_and_nameless_tuple_are_named_upload(client: openai.OpenAI) -> None:
    assert client.files.create(file=b"raw", purpose="user_data").filename == "upload"
    assert client.files.create(file=(None, b"x"), purpose="user_data").filename == "upload"


def test_path_components_are_dropped_from_filenames(client: openai.OpenAI) -> None:
    for name in ["../../etc/passwd", "/abs/path/name.txt", "C:\\dir\\win.txt"]:
        created = client.files.create(file=(name, b"x"), purpose="user_data")
        assert "/" not in created.filename and "\\" not in created.filename


def test_empty_file_round_trips(client: openai.OpenAI) -> None:
    created = client.files.create(file=("empty.txt", b""), purpose="user_data")
    assert created.bytes == 0
    assert client.files.content(created.id).content == b""
    with pytest.deprecated_call():
        assert client.files.retrieve_content(created.id) == ""


@pytest.mark.parametrize("size", [1, 5 * 1024 * 1024 + 7])
def test_binary_content_is_byte_exact(client: openai.OpenAI, size: int) -> None:
    payload = os.urandom(size)
    created = client.files.create(file=("blob.bin", payload), purpose="user_data")
    assert created.bytes == size
    downloaded = client.files.content(created.id).content
    assert hashlib.sha256(downloaded).digest() == hashlib.sha256(payload).digest()
    with client.files.with_streaming_response.content(created.id) as response:
        assert b"".join(response.iter_bytes()) == payload


def test_retrieve_content_returns_text(client: openai.OpenAI) -> None:
    text = '{"prompt": "héllo"}\n'
    created = client.files.create(file=("t.jsonl", text.encode()), purpose="fine-tune")
    with pytest.deprecated_call():
        assert client.files.retrieve_content(created.id) == text


def test_missing_file_is_404_everywhere(client: openai.OpenAI) -> None:
    for call in (client.files.retrieve, client.files.delete, client.files.content):
        with pytest.raises(openai.NotFoundError) as caught:
            call("file-doesnotexist")
        assert caught.value.param == "id"
        assert "No such File object: file-doesnotexist" in caught.value.message
        assert caught.value.request_id and caught.value.request_id.startswith("req_")


@pytest.mark.parametrize("file_id", ["file_abc", "0123456789abcdefghijklmnopqr"])
def test_the_sdk_gets_openai_errors_for_ids_shaped_like_other_vendors(
    client: openai.OpenAI, file_id: str
) -> None:
    # Found by this test: the shape of the id (`file_…` Anthropic's, 28 characters Gemini's)
    # routed the openai SDK's own request to the other dialect, with its error JSON.
    for call in (client.files.retrieve, client.files.delete, client.files.content):
        with pytest.raises(openai.NotFoundError) as caught:
            call(file_id)
        assert (caught.value.type, caught.value.param) == ("invalid_request_error", "id")
        assert f"No such File object: {file_id}" in caught.value.message


def test_delete_removes_the_file(client: openai.OpenAI) -> None:
    created = client.files.create(file=("gone.txt", b"x"), purpose="user_data")
    deleted = client.files.delete(created.id)
    assert (deleted.id, deleted.deleted, deleted.object) == (created.id, True, "file")
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(created.id)
    with pytest.raises(openai.NotFoundError):
        client.files.delete(created.id)
    assert created.id not in {f.id for f in client.files.list(purpose="user_data")}


def test_wait_for_processing_returns_after_one_poll(client: openai.OpenAI) -> None:
    created = client.files.create(file=("w.txt", b"x"), purpose="user_data")
    assert client.files.wait_for_processing(created.id, poll_interval=60).status == "processed"


@pytest.mark.parametrize(
    ("purpose", "name", "content"),
    [
        pytest.param("batch", "x.txt", b"{}\n", id="batch-not-jsonl"),
        pytest.param("batch", "x.jsonl", '{"a": 1}\n'.encode("utf-16"), id="batch-utf16"),
        pytest.param("batch", "x.jsonl", b'{"a": 1}\nnot json\n', id="batch-bad-json"),
        pytest.param("fine-tune", "x.csv", b"a,b\n", id="fine-tune-not-jsonl"),
        pytest.param("vision", "x.pdf", b"%PDF", id="vision-not-image"),
        pytest.param("assistants", "x.exe", b"MZ", id="assistants-extension"),
        pytest.param("batch_output", "x.jsonl", b"{}\n", id="server-only-purpose"),
        pytest.param("nope", "x.txt", b"x", id="unknown-purpose"),
    ],
)
def test_files_the_purpose_refuses_are_400(
    client: openai.OpenAI, server: FileDockServer, purpose: str, name: str, content: bytes
) -> None:
    with pytest.raises(openai.BadRequestError):
        client.files.create(file=(name, content), purpose=purpose)
    assert server.leftovers() == []


def test_user_data_accepts_any_extension(client: openai.OpenAI) -> None:
    assert client.files.create(file=("x.bin", b"\x00\xff"), purpose="user_data").purpose == "user_data"


def test_strict_response_validation_accepts_every_response(server: FileDockServer) -> None:
    with openai.OpenAI(
        base_url=server.openai_url, api_key="k", max_retries=0, _strict_response_validation=True
    ) as strict:
        created = strict.files.create(file=("s.txt", b"x"), purpose="user_data")
        strict.files.retrieve(created.id)
        strict.files.list(purpose="user_data", limit=5)
        strict.files.delete(created.id)


async def test_async_client_lifecycle(server: FileDockServer) -> None:
    async with openai.AsyncOpenAI(base_url=server.openai_url, api_key="k", max_retries=0) as client:
        created = await client.files.create(file=("async.txt", b"async"), purpose="user_data")
        assert (await client.files.retrieve(created.id)).id == created.id
        assert (await client.files.content(created.id)).content == b"async"
        assert (await client.files.delete(created.id)).deleted is True


async def test_thirty_concurrent_uploads_all_land_across_two_workers(
    make_server: Callable[..., FileDockServer],
) -> None:
    server = make_server(workers="2")
    async with openai.AsyncOpenAI(base_url=server.openai_url, api_key="k", max_retries=0) as client:
        payloads = [os.urandom(64 * 1024 + i) for i in range(32)]
        created = await asyncio.gather(
            *(client.files.create(file=(f"c{i}.bin", p), purpose="user_data") for i, p in enumerate(payloads))
        )
        assert len({f.id for f in created}) == 32
        contents = await asyncio.gather(*(client.files.content(f.id) for f in created))
        assert [c.content for c in contents] == payloads


@pytest.mark.parametrize(("typed", "meant"), [("", "/v1"), ("/openai", "/openai/v1"), ("/v1/v1", "/v1")])
def test_a_wrong_base_url_is_told_the_right_one(server: FileDockServer, typed: str, meant: str) -> None:
    with openai.OpenAI(base_url=server.url + typed, api_key="k", max_retries=0) as sdk:
        for call in (lambda: sdk.files.create(file=("a.txt", b"x"), purpose="user_data"), sdk.files.list):
            with pytest.raises(openai.NotFoundError) as caught:
                call()
            assert caught.value.type == "invalid_request_error"
            assert f"set base_url to {server.url}{meant}." in caught.value.message
            assert f"FileDock serves the OpenAI API under {meant}" in caught.value.message


@pytest.mark.embedded_only("deletes a blob file behind the server's back")
def test_a_missing_blob_is_a_server_error_the_sdk_does_not_retry(
    make_server: Callable[..., FileDockServer],
) -> None:
    # Found by this test: a 503 with retry-after, which the SDK retried as if it were transient.
    server = make_server()
    sent: list[str] = []
    hooks = {"request": [lambda request: sent.append(request.url.path)]}
    with openai.OpenAI(
        base_url=server.openai_url,
        api_key="k",
        max_retries=2,
        http_client=openai.DefaultHttpxClient(event_hooks=hooks),
    ) as sdk:
        created = sdk.files.create(file=("lost.txt", b"soon gone"), purpose="user_data")
        [(key,)] = server.sql("SELECT blob_key FROM files WHERE id = ?", created.id)
        [blob] = server.blob_files()
        blob.unlink()
        sent.clear()
        with pytest.raises(openai.InternalServerError) as caught:
            sdk.files.content(created.id)
    assert sent == [f"/v1/files/{created.id}/content"]  # one request: no retry
    assert caught.value.response.headers["x-should-retry"] == "false"
    assert "retry-after" not in caught.value.response.headers
    assert "missing from the blob store" in caught.value.message
    log = server.log_path.read_text()
    [line] = [
        line for line in log.splitlines() if f"file {created.id} names blob {key}, which is missing" in line
    ]
    assert " ERROR filedock" in line, line
