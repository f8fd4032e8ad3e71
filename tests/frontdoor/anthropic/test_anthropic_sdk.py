"""Anthropic Files through the official SDK, on the shared root and on `/anthropic`.

`make test` runs this file under anthropic 0.x (era A: `?beta=true`, `anthropic-beta`, `after_id`
paging), 1.x (era B: `page` cursors) and 2.x (era C: `Authorization: Bearer`).
"""

import inspect
from collections.abc import Callable
from datetime import datetime

import anthropic
import pytest

from tests import loopback
from tests.frontdoor.sdk_fixtures import LISTING_KEYS
from tests.servers import FileDockServer

ERA = anthropic.__version__.split(".")[0]
HAS_EXPIRY = (
    "expires_in_seconds" in inspect.signature(anthropic.Anthropic(api_key="x").beta.files.upload).parameters
)


def test_upload_returns_file_metadata(anthropic_client: anthropic.Anthropic) -> None:
    created = anthropic_client.beta.files.upload(file=("notes.txt", b"hello", "text/plain"))
    assert created.id.startswith("file_")
    assert created.type == "file"
    assert created.filename == "notes.txt"
    assert created.mime_type == "text/plain"
    assert created.size_bytes == 5
    assert isinstance(created.created_at, datetime)
    assert created.downloadable is True


def test_retrieve_download_delete_round_trip(anthropic_client: anthropic.Anthropic) -> None:
    created = anthropic_client.beta.files.upload(file=("data.bin", b"\x00\x01payload", "application/x-thing"))
    assert anthropic_client.beta.files.retrieve_metadata(created.id).id == created.id
    assert anthropic_client.beta.files.download(created.id).read() == b"\x00\x01payload"
    deleted = anthropic_client.beta.files.delete(created.id)
    assert (deleted.id, deleted.type) == (created.id, "file_deleted")
    with pytest.raises(anthropic.NotFoundError):
        anthropic_client.beta.files.retrieve_metadata(created.id)


def test_raw_bytes_are_stored_under_a_default_name(anthropic_client: anthropic.Anthropic) -> None:
    created = anthropic_client.beta.files.upload(file=b"Example data")
    # 1.x and 2.x send no filename, which becomes `unnamed…`; 0.x names raw bytes `upload` itself.
    assert created.filename.startswith("upload" if ERA == "0" else "unnamed")
    assert created.size_bytes == 12


def test_filename_keeps_only_the_last_path_component(anthropic_client: anthropic.Anthropic) -> None:
    created = anthropic_client.beta.files.upload(file=("dir/sub/report.md", b"# hi", "text/markdown"))
    assert created.filename == "report.md"


def test_list_pages_through_every_file_newest_first(
    keyed_dock: FileDockServer, make_client: Callable[..., anthropic.Anthropic], face: str
) -> None:
    client = make_client(keyed_dock, face, api_key=LISTING_KEYS[face])  # a project of its own
    uploaded = [client.beta.files.upload(file=(f"f{i}.txt", b"x", "text/plain")).id for i in range(21)]
    newest_first = uploaded[::-1]
    assert [f.id for f in client.beta.files.list().data] == newest_first[:20]  # 20 by default
    first = client.beta.files.list(limit=8)
    assert [f.id for f in first.data] == newest_first[:8]
    assert first.has_next_page()
    assert [f.id for f in client.beta.files.list(limit=8)] == newest_first  # auto-pagination


def test_missing_file_is_404_not_found_error(anthropic_client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as caught:
        anthropic_client.beta.files.retrieve_metadata("file_011CNha8iCJcU1wXNR6q4V8w")
    body = caught.value.body
    assert isinstance(body, dict)
    assert body["error"]["type"] == "not_found_error"
    assert caught.value.response.headers["request-id"].startswith("req_")
    assert body["request_id"] == caught.value.response.headers["request-id"]


@pytest.mark.parametrize(
    "file_id",
    [
        pytest.param("file-AAAAAAAAAAAAAAAAAAAAAAAA", id="openai-id"),
        pytest.param("0000000000000000000000000000", id="gemini-id"),
        pytest.param("file_id", id="placeholder"),
    ],
)
def test_ids_of_other_dialects_are_404(anthropic_client: anthropic.Anthropic, file_id: str) -> None:
    with pytest.raises(anthropic.NotFoundError):
        anthropic_client.beta.files.delete(file_id)


def test_bad_limit_is_400_invalid_request_error(anthropic_client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        anthropic_client.beta.files.list(limit=1001)
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["error"]["type"] == "invalid_request_error"


@pytest.mark.skipif(not HAS_EXPIRY, reason=f"anthropic {anthropic.__version__} has no expires_in_seconds")
def test_expires_in_seconds_sets_expires_at(anthropic_client: anthropic.Anthropic) -> None:
    created = anthropic_client.beta.files.upload(
        file=("a.txt", b"x", "text/plain"),
        expires_in_seconds=3600,  # type: ignore[call-arg, unused-ignore]
    )
    assert created.expires_at is not None
    assert (created.expires_at - created.created_at).total_seconds() == 3600


@pytest.mark.skipif(not HAS_EXPIRY, reason=f"anthropic {anthropic.__version__} has no expires_in_seconds")
def test_expires_in_seconds_out_of_range_is_400(anthropic_client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError):
        anthropic_client.beta.files.upload(
            file=("a.txt", b"x", "text/plain"),
            expires_in_seconds=60,  # type: ignore[call-arg, unused-ignore]
        )


def test_vendor_policy_refuses_download_as_anthropic_does(
    vendor_dock: FileDockServer, make_client: Callable[..., anthropic.Anthropic], face: str
) -> None:
    client = make_client(vendor_dock, face)
    created = client.beta.files.upload(file=("a.txt", b"x", "text/plain"))
    assert created.downloadable is False
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.beta.files.download(created.id).read()
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["error"]["details"] == {"error_code": "file_not_downloadable"}


def test_configured_api_keys_are_enforced(
    keyed_dock: FileDockServer, make_client: Callable[..., anthropic.Anthropic], face: str
) -> None:
    with pytest.raises(anthropic.AuthenticationError) as caught:
        make_client(keyed_dock, face, api_key="wrong").beta.files.list()
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["error"]["type"] == "authentication_error"
    make_client(keyed_dock, face, api_key="secret-1").beta.files.list()


def test_every_response_carries_a_request_id(dock: FileDockServer, face: str) -> None:
    prefix = "/anthropic" if face == "prefix" else ""
    headers = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
    response = loopback.get(f"{dock.url}{prefix}/v1/files?beta=true", headers=headers)
    assert response.status_code == 200
    assert response.headers["request-id"].startswith("req_")
    assert set(response.json()) == {"data", "has_more", "first_id", "last_id", "next_page"}


@pytest.mark.parametrize(("typed", "meant"), [("/v1", ""), ("/anthropic/v1", "/anthropic")])
def test_a_wrong_base_url_is_told_the_right_one(dock: FileDockServer, typed: str, meant: str) -> None:
    # Found by this test: the message showed `/anthropic/v1/v1/files`, a path the user never typed.
    with anthropic.Anthropic(base_url=dock.url + typed, api_key="k", max_retries=0) as sdk:
        for call in (lambda: sdk.beta.files.upload(file=("a.txt", b"x", "text/plain")), sdk.beta.files.list):
            with pytest.raises(anthropic.NotFoundError) as caught:
                call()
            message = caught.value.body["error"]["message"]  # type: ignore[index]
            assert message.startswith(f"Invalid URL ({caught.value.request.method} {typed}/v1/files)")
            assert message.endswith(f"set base_url to {dock.url}{meant}.")


@pytest.mark.embedded_only("deletes a blob file behind the server's back")
def test_a_missing_blob_is_a_server_error_the_sdk_does_not_retry(
    make_dock: Callable[..., FileDockServer],
) -> None:
    server = make_dock()
    sent: list[str] = []
    hooks = {"request": [lambda request: sent.append(request.url.path)]}
    with anthropic.Anthropic(
        base_url=server.url,
        api_key="k",
        max_retries=2,
        http_client=anthropic.DefaultHttpxClient(event_hooks=hooks),
    ) as sdk:
        created = sdk.beta.files.upload(file=("lost.txt", b"soon gone", "text/plain"))
        [blob] = server.blob_files()
        blob.unlink()
        sent.clear()
        with pytest.raises(anthropic.InternalServerError) as caught:
            sdk.beta.files.download(created.id)
    assert sent == [f"/v1/files/{created.id}/content"]  # one request: no retry
    assert caught.value.response.headers["x-should-retry"] == "false"
    assert "missing from the blob store" in caught.value.body["error"]["message"]  # type: ignore[index]
