"""Ranged and conditional downloads of GET/HEAD /files/{id}/content over raw httpx (RFC 9110)."""

import hashlib
import os

import httpx
import openai
import pytest

from tests import loopback
from tests.servers import FileDockServer, wait_until

PAYLOAD = os.urandom(1000)


@pytest.fixture(scope="module")
def file_id(server: FileDockServer) -> str:
    """A file whose hash, and so its ETag, is known: it is computed just after the upload."""
    with openai.OpenAI(base_url=server.openai_url, api_key="k", max_retries=0) as client:
        created = client.files.create(file=("r.bin", PAYLOAD), purpose="user_data").id
    assert wait_until(lambda: "etag" in loopback.head(f"{server.openai_url}/files/{created}/content").headers)
    return created


@pytest.fixture
def etag(http: httpx.Client, file_id: str) -> str:
    return http.get(f"/files/{file_id}/content").headers["etag"]


def content(http: httpx.Client, file_id: str, **headers: str) -> httpx.Response:
    return http.get(f"/files/{file_id}/content", headers=headers)


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        pytest.param("bytes=10-19", 10, 20, id="a-b"),
        pytest.param("bytes=990-5000", 990, 1000, id="a-b-past-the-end"),
        pytest.param("bytes=995-", 995, 1000, id="a-"),
        pytest.param("bytes=-7", 993, 1000, id="-n"),
        pytest.param("bytes=-5000", 0, 1000, id="-n-longer-than-the-file"),
        pytest.param("bytes=0-0", 0, 1, id="first-byte"),
        pytest.param("BYTES = 3 - 4", 3, 5, id="case-and-spaces"),
    ],
)
def test_range_is_206_with_the_slice(
    http: httpx.Client, file_id: str, header: str, start: int, end: int
) -> None:
    response = content(http, file_id, range=header)
    assert response.status_code == 206
    assert response.content == PAYLOAD[start:end]
    assert response.headers["content-range"] == f"bytes {start}-{end - 1}/1000"
    assert response.headers["content-length"] == str(end - start)


def test_range_response_keeps_the_download_headers(http: httpx.Client, file_id: str) -> None:
    headers = content(http, file_id, range="bytes=0-9").headers
    assert headers["accept-ranges"] == "bytes"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["content-disposition"].startswith("attachment")


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=5000-6000", "bytes=-0"])
def test_unsatisfiable_range_is_416(http: httpx.Client, file_id: str, header: str) -> None:
    response = content(http, file_id, range=header)
    assert response.status_code == 416
    assert response.headers["content-range"] == "bytes */1000"
    assert response.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    "header",
    [
        pytest.param("bytes=0-1,5-6", id="multi-range"),
        pytest.param("bytes=abc", id="garbage"),
        pytest.param("bytes=9-3", id="end-before-start"),
        pytest.param("items=0-1", id="other-unit"),
        pytest.param("bytes=-", id="no-numbers"),
        pytest.param("bytes=+1-2", id="signed"),
    ],
)
def test_malformed_or_multi_range_is_ignored(http: httpx.Client, file_id: str, header: str) -> None:
    response = content(http, file_id, range=header)
    assert (response.status_code, response.content) == (200, PAYLOAD)


def test_full_download_advertises_ranges(http: httpx.Client, file_id: str) -> None:
    response = content(http, file_id)
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["content-length"] == "1000"


def test_etag_is_the_quoted_sha256(http: httpx.Client, file_id: str) -> None:
    assert content(http, file_id).headers["etag"] == f'"{hashlib.sha256(PAYLOAD).hexdigest()}"'


def test_head_sends_the_headers_without_a_body(http: httpx.Client, file_id: str, etag: str) -> None:
    response = http.head(f"/files/{file_id}/content")
    assert (response.status_code, response.content) == (200, b"")
    assert response.headers["content-length"] == "1000"
    assert response.headers["etag"] == etag
    assert response.headers["content-disposition"].startswith("attachment")
    assert response.headers["x-content-type-options"] == "nosniff"


def test_head_with_a_range_is_206_without_a_body(http: httpx.Client, file_id: str) -> None:
    response = http.head(f"/files/{file_id}/content", headers={"range": "bytes=0-9"})
    assert (response.status_code, response.content) == (206, b"")
    assert response.headers["content-range"] == "bytes 0-9/1000"


def test_head_of_a_missing_file_is_404(http: httpx.Client) -> None:
    assert http.head("/files/file-doesnotexist/content").status_code == 404


@pytest.mark.parametrize("form", ["{etag}", "W/{etag}", '"other", {etag}', "*"])
def test_if_none_match_hit_is_304(http: httpx.Client, file_id: str, etag: str, form: str) -> None:
    response = content(http, file_id, **{"if-none-match": form.format(etag=etag)})
    assert (response.status_code, response.content) == (304, b"")
    assert response.headers["etag"] == etag


def test_if_none_match_miss_is_200(http: httpx.Client, file_id: str) -> None:
    response = content(http, file_id, **{"if-none-match": '"stale"'})
    assert (response.status_code, response.content) == (200, PAYLOAD)


def test_if_range_with_the_etag_sends_the_range(http: httpx.Client, file_id: str, etag: str) -> None:
    response = content(http, file_id, range="bytes=0-9", **{"if-range": etag})
    assert (response.status_code, response.content) == (206, PAYLOAD[:10])


@pytest.mark.parametrize("if_range", ['"stale"', "W/{etag}", "Wed, 21 Oct 2015 07:28:00 GMT"])
def test_if_range_mismatch_sends_the_whole_file(
    http: httpx.Client, file_id: str, etag: str, if_range: str
) -> None:
    response = content(http, file_id, range="bytes=0-9", **{"if-range": if_range.format(etag=etag)})
    assert (response.status_code, response.content) == (200, PAYLOAD)


def test_suffix_range_of_an_empty_file_is_the_empty_file(http: httpx.Client, client: openai.OpenAI) -> None:
    empty = client.files.create(file=("e.txt", b""), purpose="user_data")
    response = content(http, empty.id, range="bytes=-5")
    assert (response.status_code, response.content) == (200, b"")


def test_range_of_a_file_made_by_an_upload(http: httpx.Client, client: openai.OpenAI) -> None:
    upload = client.uploads.create(bytes=6, filename="u.txt", mime_type="text/plain", purpose="user_data")
    parts = [client.uploads.parts.create(upload_id=upload.id, data=d).id for d in (b"abc", b"def")]
    done = client.uploads.complete(upload_id=upload.id, part_ids=parts)
    assert done.file is not None
    assert content(http, done.file.id, range="bytes=2-3").content == b"cd"


# --- the same builder answers every dialect's download ---------------------------------------


def dialect_download_url(server: FileDockServer, dialect: str, file_id: str) -> tuple[str, dict[str, str]]:
    """Where each dialect serves the bytes of `file_id`, and the headers its clients send."""
    body = file_id.removeprefix("file-")
    if dialect == "anthropic":
        return f"{server.url}/anthropic/v1/files/file_{body}/content", {"anthropic-version": "2023-06-01"}
    gemini_id = gemini_id_of(file_id)
    return f"{server.url}/gemini/v1beta/files/{gemini_id}:download?alt=media", {"x-goog-api-key": "k"}


def gemini_id_of(file_id: str) -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    number = 0
    for char in file_id.removeprefix("file-"):
        number = number * 62 + alphabet.index(char)
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = []
    for _ in range(28):
        number, digit = divmod(number, 36)
        out.append(digits[digit])
    return "".join(reversed(out))


DIALECTS = [pytest.param("anthropic", id="anthropic"), pytest.param("gemini", id="gemini")]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_dialect_download_answers_a_range_with_206(
    server: FileDockServer, file_id: str, dialect: str
) -> None:
    url, headers = dialect_download_url(server, dialect, file_id)
    response = loopback.get(url, headers={**headers, "range": "bytes=10-19"})
    assert response.status_code == 206, response.text
    assert response.content == PAYLOAD[10:20]
    assert response.headers["content-range"] == "bytes 10-19/1000"


@pytest.mark.parametrize("dialect", DIALECTS)
def test_dialect_download_answers_an_unsatisfiable_range_with_416(
    server: FileDockServer, file_id: str, dialect: str
) -> None:
    url, headers = dialect_download_url(server, dialect, file_id)
    response = loopback.get(url, headers={**headers, "range": "bytes=5000-"})
    assert response.status_code == 416
    assert response.headers["content-range"] == "bytes */1000"


@pytest.mark.parametrize("dialect", DIALECTS)
def test_dialect_download_answers_head_without_a_body(
    server: FileDockServer, file_id: str, dialect: str
) -> None:
    url, headers = dialect_download_url(server, dialect, file_id)
    response = loopback.head(url, headers=headers)
    assert response.status_code == 200
    assert response.headers["content-length"] == "1000"
    assert response.content == b""


@pytest.mark.parametrize("dialect", DIALECTS)
def test_dialect_download_answers_a_matching_etag_with_304(
    server: FileDockServer, file_id: str, dialect: str
) -> None:
    url, headers = dialect_download_url(server, dialect, file_id)
    etag = loopback.get(url, headers=headers).headers["etag"]
    assert etag == f'"{hashlib.sha256(PAYLOAD).hexdigest()}"'
    response = loopback.get(url, headers={**headers, "if-none-match": etag})
    assert response.status_code == 304
    assert response.content == b""
