"""Gemini Files through google-genai, on the shared root and on `/gemini`.

`make test` runs this file under google-genai 2.x (which calls `v1beta`) and 3.x (`v1`).
"""

import io
import re
import time
from collections.abc import Callable

import pytest
from google import genai
from google.genai import _api_client, errors

from tests.frontdoor.sdk_fixtures import LISTING_KEYS
from tests.servers import FileDockServer, wait_until

VERSION = "v1" if genai.__version__.startswith("3.") else "v1beta"


def upload(
    client: genai.Client, data: bytes, name: str = "notes.txt", mime: str = "text/plain"
) -> genai.types.File:
    return client.files.upload(file=io.BytesIO(data), config={"display_name": name, "mime_type": mime})


def test_upload_returns_the_file_resource(
    dock: FileDockServer, face: str, gemini_client: genai.Client
) -> None:
    created = upload(gemini_client, b"hello")
    assert created.name is not None and created.name.startswith("files/")
    assert created.name.removeprefix("files/").isalnum() and created.name.islower()
    assert (created.display_name, created.mime_type, created.size_bytes) == ("notes.txt", "text/plain", 5)
    assert created.state == genai.types.FileState.ACTIVE
    assert created.create_time is not None and created.expiration_time is not None
    assert (created.expiration_time - created.create_time).total_seconds() == 48 * 3600
    base = dock.url + ("/gemini" if face == "prefix" else "")
    assert created.uri == f"{base}/{VERSION}/{created.name}"
    assert created.download_uri == f"{base}/{VERSION}/{created.name}:download?alt=media"


def test_get_download_delete_round_trip(gemini_client: genai.Client) -> None:
    created = upload(gemini_client, b"\x00binary\xff", "blob.bin", "application/octet-stream")
    assert created.name is not None
    assert gemini_client.files.get(name=created.name).name == created.name
    assert gemini_client.files.download(file=created) == b"\x00binary\xff"
    gemini_client.files.delete(name=created.name)
    with pytest.raises(errors.ClientError) as caught:
        gemini_client.files.get(name=created.name)
    assert (caught.value.code, caught.value.status) == (404, "NOT_FOUND")


def test_download_by_the_files_uri(gemini_client: genai.Client) -> None:
    # The SDKs strip a uri to the file's id only when it starts with https://; FileDock's are
    # http://, so the uri itself is sent where the name belongs (@google/genai for Node does
    # this with a File object).
    created = upload(gemini_client, b"fetched by uri")
    assert created.uri is not None
    assert gemini_client.files.download(file=created.uri) == b"fetched by uri"
    assert gemini_client.files.download(file=genai.types.Video(uri=created.uri)) == b"fetched by uri"


def test_multi_chunk_upload_is_assembled_in_order(
    gemini_client: genai.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_api_client, "CHUNK_SIZE", 1000)
    data = bytes(range(256)) * 20  # 5120 bytes: five full chunks and one short one
    created = upload(gemini_client, data, "chunks.bin", "application/octet-stream")
    assert created.size_bytes == len(data)
    assert gemini_client.files.download(file=created) == data


def test_upload_larger_than_one_sdk_chunk(
    dock: FileDockServer, make_client: Callable[..., genai.Client]
) -> None:
    data = b"0123456789abcdef" * (_api_client.CHUNK_SIZE // 16) + b"tail"  # 8 MiB and 4 bytes
    client = make_client(dock)
    created = upload(client, data, "big.bin", "application/octet-stream")
    assert created.size_bytes == len(data)
    assert client.files.download(file=created) == data


def test_empty_file_uploads(gemini_client: genai.Client) -> None:
    created = upload(gemini_client, b"", "empty.txt")
    assert created.size_bytes in (0, None)  # proto3 JSON omits zero; we send "0"
    assert gemini_client.files.download(file=created) == b""


def test_list_pages_through_every_file_newest_first(
    keyed_dock: FileDockServer, make_client: Callable[..., genai.Client], face: str
) -> None:
    client = make_client(keyed_dock, face, api_key=LISTING_KEYS[face])  # a project of its own
    uploaded = [upload(client, b"x", f"f{i}.txt").name for i in range(12)]
    newest_first = uploaded[::-1]
    assert [f.name for f in client.files.list().page] == newest_first[:10]  # 10 by default
    pager = client.files.list(config={"page_size": 5})
    assert [f.name for f in pager.page] == newest_first[:5]
    assert [f.name for f in pager] == newest_first  # the Pager follows nextPageToken


def test_bad_page_token_is_400_invalid_argument(gemini_client: genai.Client) -> None:
    with pytest.raises(errors.ClientError) as caught:
        gemini_client.files.list(config={"page_token": "not-a-token"})
    assert (caught.value.code, caught.value.status) == (400, "INVALID_ARGUMENT")


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("files/file-AAAAAAAAAAAAAAAAAAAAAAAA", id="openai-id"),
        pytest.param("files/file_AAAAAAAAAAAAAAAAAAAAAAAA", id="anthropic-id"),
        pytest.param("files/zzzzzzzzzzzzzzzzzzzzzzzzzzzz", id="out-of-range"),
    ],
)
def test_ids_of_other_dialects_are_404(gemini_client: genai.Client, name: str) -> None:
    with pytest.raises(errors.ClientError) as caught:
        gemini_client.files.get(name=name)
    assert caught.value.code == 404


def test_vendor_policy_hides_download_uri_and_refuses_download(
    vendor_dock: FileDockServer, make_client: Callable[..., genai.Client], face: str
) -> None:
    client = make_client(vendor_dock, face)
    created = upload(client, b"secret")
    assert created.download_uri is None and created.name is not None
    with pytest.raises(ValueError, match="download"):
        client.files.download(file=created)  # the SDK refuses on its own
    with pytest.raises(errors.ClientError) as caught:
        client.files.download(file=created.name)
    assert (caught.value.code, caught.value.status) == (400, "FAILED_PRECONDITION")


def test_configured_api_keys_are_enforced(
    keyed_dock: FileDockServer, make_client: Callable[..., genai.Client], face: str
) -> None:
    with pytest.raises(errors.ClientError) as caught:
        list(make_client(keyed_dock, face, api_key="wrong").files.list())
    assert (caught.value.code, caught.value.status) == (401, "UNAUTHENTICATED")
    created = upload(make_client(keyed_dock, face, api_key="secret-1"), b"ok")  # chunks carry no key
    assert created.size_bytes == 2


@pytest.mark.parametrize(("typed", "meant"), [("/v1", ""), ("/v1beta", ""), ("/gemini/v1beta", "/gemini")])
def test_a_wrong_base_url_is_told_the_right_one(dock: FileDockServer, typed: str, meant: str) -> None:
    # Found by this test: the message showed `/gemini/v1/upload/…`, a path the user never typed.
    client = genai.Client(
        api_key="k", vertexai=False, http_options=genai.types.HttpOptions(base_url=dock.url + typed)
    )
    try:
        for call in (lambda: upload(client, b"x"), lambda: list(client.files.list())):
            with pytest.raises(errors.ClientError) as caught:
                call()
            assert (caught.value.code, caught.value.status) == (404, "NOT_FOUND")
            message = str(caught.value.message)
            assert re.match(
                rf"Invalid URL \((GET|POST) {re.escape(typed)}/(upload/)?{VERSION}/files", message
            )
            assert message.endswith(f"set base_url to {dock.url}{meant}.")
    finally:
        client.close()


@pytest.mark.embedded_only("deletes a blob file behind the server's back")
def test_a_missing_blob_is_data_loss_not_retried(
    make_dock: Callable[..., FileDockServer], make_client: Callable[..., genai.Client]
) -> None:
    server = make_dock(log_level="info")  # with the access log, which counts the requests
    client = make_client(server)
    created = upload(client, b"soon gone")
    [blob] = server.blob_files()
    blob.unlink()
    with pytest.raises(errors.ServerError) as caught:
        client.files.download(file=created)
    assert (caught.value.code, caught.value.status) == (500, "DATA_LOSS")
    assert "missing from the blob store" in str(caught.value.message)

    def failed_downloads() -> list[str]:
        # The access line is written once the answer has gone out: the client may read it first.
        lines = server.log_path.read_text().splitlines()
        return [line for line in lines if "download" in line and " 500 " in line]

    assert wait_until(lambda: len(failed_downloads()) >= 1)
    time.sleep(0.5)  # a retry, had there been one, would have arrived by now
    assert len(failed_downloads()) == 1, server.log_path.read_text()
