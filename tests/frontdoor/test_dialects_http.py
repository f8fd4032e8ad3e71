"""The three faces of one store over raw HTTP: sniffing on the bare root, cross-dialect ids,
paging, error bodies and Gemini's resumable protocol step by step. Needs only httpx."""

from collections.abc import Callable

import httpx
import pytest

from tests import loopback
from tests.servers import FileDockServer

ANTHROPIC = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
GEMINI = {"x-goog-api-key": "k"}


def upload_anthropic(base: str, name: str = "a.txt", data: bytes = b"hello") -> dict:
    response = loopback.post(
        f"{base}/v1/files", headers=ANTHROPIC, files={"file": (name, data, "text/plain")}
    )
    assert response.status_code == 200, response.text
    return response.json()


def start_gemini(base: str, size: int, version: str = "v1beta", **headers: str) -> httpx.Response:
    start = {
        "x-goog-upload-protocol": "resumable",
        "x-goog-upload-command": "start",
        "x-goog-upload-header-content-length": str(size),
        "x-goog-upload-header-content-type": "text/plain",
        **GEMINI,
        **headers,
    }
    return loopback.post(
        f"{base}/upload/{version}/files", headers=start, json={"file": {"displayName": "g.txt"}}
    )


def chunk(url: str, data: bytes, offset: int, command: str = "upload") -> httpx.Response:
    headers = {"x-goog-upload-command": command, "x-goog-upload-offset": str(offset)}
    return loopback.post(url, headers=headers, content=data)


@pytest.mark.parametrize(
    ("path", "headers", "keys"),
    [
        pytest.param("/v1/files", {"authorization": "Bearer k"}, {"object", "data"}, id="openai"),
        pytest.param("/v1/files?beta=true", ANTHROPIC, {"data", "next_page"}, id="anthropic-key"),
        pytest.param(
            "/v1/files",
            {"authorization": "Bearer k", "anthropic-version": "2026-10-21"},
            {"next_page"},
            id="era-c",
        ),
        pytest.param("/v1/files", GEMINI, set(), id="gemini-v1"),
        pytest.param("/v1beta/files", {}, set(), id="gemini-v1beta"),
    ],
)
def test_bare_root_is_sniffed(server: FileDockServer, path: str, headers: dict, keys: set) -> None:
    response = loopback.get(server.url + path, headers=headers)
    assert response.status_code == 200
    assert keys <= set(response.json())
    if not keys:  # Gemini: {} or {"files": [...]}, never another dialect's keys
        assert set(response.json()) <= {"files", "nextPageToken"}


def test_one_file_has_three_faces(make_server: Callable[..., FileDockServer]) -> None:
    server = make_server()
    created = loopback.post(
        f"{server.url}/openai/v1/files",
        files={"file": ("x.txt", b"one store")},
        data={"purpose": "user_data"},
    ).json()
    anthropic_id = "file_" + created["id"].removeprefix("file-")
    metadata = loopback.get(f"{server.url}/anthropic/v1/files/{anthropic_id}", headers=ANTHROPIC).json()
    assert (metadata["id"], metadata["size_bytes"], metadata["filename"]) == (anthropic_id, 9, "x.txt")
    [resource] = loopback.get(f"{server.url}/gemini/v1beta/files", headers=GEMINI).json()["files"]
    assert (resource["displayName"], resource["sizeBytes"]) == ("x.txt", "9")
    content = loopback.get(
        f"{server.url}/gemini/v1beta/{resource['name']}:download?alt=media", headers=GEMINI
    )
    assert content.content == b"one store"
    loopback.delete(f"{server.url}/gemini/v1beta/{resource['name']}", headers=GEMINI).raise_for_status()
    assert loopback.get(f"{server.url}/v1/files/{created['id']}").status_code == 404


def test_anthropic_pages_backwards_with_before_id(make_server: Callable[..., FileDockServer]) -> None:
    base = make_server().url + "/anthropic"
    ids = [upload_anthropic(base, f"f{i}.txt")["id"] for i in range(5)]  # newest last
    page = loopback.get(
        f"{base}/v1/files", headers=ANTHROPIC, params={"before_id": ids[1], "limit": 2}
    ).json()
    assert [f["id"] for f in page["data"]] == [ids[3], ids[2]]
    assert (page["first_id"], page["last_id"], page["has_more"]) == (ids[3], ids[2], True)
    older = loopback.get(
        f"{base}/v1/files", headers=ANTHROPIC, params={"after_id": ids[3], "limit": 10}
    ).json()
    assert [f["id"] for f in older["data"]] == [ids[2], ids[1], ids[0]]
    assert (older["has_more"], older["next_page"]) == (False, None)


def test_anthropic_ids_filter_drops_unknown_ids(server: FileDockServer) -> None:
    base = server.url + "/anthropic"
    kept = upload_anthropic(base)["id"]
    params = [("ids[]", kept), ("ids[]", "file_AAAAAAAAAAAAAAAAAAAAAAAA"), ("ids[]", "nonsense")]
    page = loopback.get(f"{base}/v1/files", headers=ANTHROPIC, params=params).json()
    assert [f["id"] for f in page["data"]] == [kept]
    assert (page["has_more"], page["next_page"]) == (False, None)


def test_anthropic_404_body(server: FileDockServer) -> None:
    response = loopback.get(f"{server.url}/v1/files/file_AAAAAAAAAAAAAAAAAAAAAAAA", headers=ANTHROPIC)
    assert response.status_code == 404
    body = response.json()
    assert body == {
        "type": "error",
        "error": {"type": "not_found_error", "message": "File not found: file_AAAAAAAAAAAAAAAAAAAAAAAA"},
        "request_id": response.headers["request-id"],
    }


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({"limit": "0"}, id="limit-zero"),
        pytest.param({"page": "page"}, id="bad-page-cursor"),
        pytest.param({"after_id": "file-abc"}, id="openai-cursor"),
    ],
)
def test_anthropic_400_body(server: FileDockServer, params: dict) -> None:
    response = loopback.get(f"{server.url}/anthropic/v1/files", headers=ANTHROPIC, params=params)
    assert response.status_code == 400
    assert response.headers["x-should-retry"] == "false"
    body = response.json()
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"


def test_anthropic_unknown_route_is_anthropic_404(server: FileDockServer) -> None:
    response = loopback.get(f"{server.url}/anthropic/v1/nothing", headers=ANTHROPIC)
    assert (response.status_code, response.json()["error"]["type"]) == (404, "not_found_error")


def test_gemini_404_body(server: FileDockServer) -> None:
    response = loopback.get(f"{server.url}/v1beta/files/0000000000000000000000000000")
    assert response.status_code == 404
    assert response.json() == {
        "error": {
            "code": 404,
            "message": "File files/0000000000000000000000000000 was not found.",
            "status": "NOT_FOUND",
        }
    }


@pytest.mark.parametrize("params", [{"pageSize": "abc"}, {"pageSize": "-1"}, {"pageToken": "file-x"}])
def test_gemini_400_body(server: FileDockServer, params: dict) -> None:
    response = loopback.get(f"{server.url}/gemini/v1/files", headers=GEMINI, params=params)
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["status"]) == (400, "INVALID_ARGUMENT")


def test_gemini_resumable_upload_step_by_step(server: FileDockServer) -> None:
    started = start_gemini(server.url + "/gemini", 10)
    assert started.status_code == 200
    assert started.headers["x-goog-upload-status"] == "active"
    url = started.headers["x-goog-upload-url"]
    assert url.startswith(f"{server.url}/gemini/upload/v1beta/files?upload_id=")
    assert chunk(url, b"hello", 0).headers["x-goog-upload-status"] == "active"
    refused = chunk(url, b"again", 0)  # a stale offset: the chunk is refused, the session kept
    assert (refused.status_code, refused.headers["x-goog-upload-status"]) == (400, "final")
    query = loopback.post(url, headers={"x-goog-upload-command": "query"})
    assert query.headers["x-goog-upload-size-received"] == "5"
    final = chunk(url, b"world", 5, "upload, finalize")
    assert final.headers["x-goog-upload-status"] == "final"
    file = final.json()["file"]
    assert (file["displayName"], file["mimeType"], file["sizeBytes"]) == ("g.txt", "text/plain", "10")
    again = chunk(url, b"", 10, "finalize")  # a retried finalize gets the same File
    assert again.json()["file"]["name"] == file["name"]


def test_gemini_finalize_before_all_bytes_is_400(server: FileDockServer) -> None:
    url = start_gemini(server.url, 10).headers["x-goog-upload-url"]
    response = chunk(url, b"short", 0, "upload, finalize")
    assert response.status_code == 400
    assert response.headers["x-goog-upload-status"] == "final"


def test_gemini_cancelled_session_is_gone(server: FileDockServer) -> None:
    url = start_gemini(server.url, 3).headers["x-goog-upload-url"]
    assert loopback.post(url, headers={"x-goog-upload-command": "cancel"}).status_code == 200
    assert chunk(url, b"abc", 0, "upload, finalize").status_code == 400


def test_gemini_start_without_a_size_is_400(server: FileDockServer) -> None:
    headers = {"x-goog-upload-protocol": "resumable", "x-goog-upload-command": "start", **GEMINI}
    response = loopback.post(f"{server.url}/upload/v1/files", headers=headers, json={"file": {}})
    assert response.status_code == 400


def test_gemini_start_accepts_camel_case_size(server: FileDockServer) -> None:
    headers = {"x-goog-upload-protocol": "resumable", "x-goog-upload-command": "start", **GEMINI}
    body = {"file": {"displayName": "c.txt", "mimeType": "text/plain", "sizeBytes": "2"}}
    url = loopback.post(f"{server.url}/upload/v1/files", headers=headers, json=body).headers[
        "x-goog-upload-url"
    ]
    assert chunk(url, b"ok", 0, "upload, finalize").json()["file"]["sizeBytes"] == "2"


def test_gemini_upload_url_follows_the_host_header(server: FileDockServer) -> None:
    started = start_gemini(server.url, 1, "v1", host="files.example.test:9999")
    assert started.headers["x-goog-upload-url"].startswith("http://files.example.test:9999/upload/v1/files?")


def test_gemini_declared_size_over_the_limit_is_refused(make_server: Callable[..., FileDockServer]) -> None:
    server = make_server(gemini_max_file_bytes="100")
    assert start_gemini(server.url, 101).status_code == 400
    assert start_gemini(server.url, 100).status_code == 200


def test_gemini_refused_large_chunk_still_gets_its_400(server: FileDockServer) -> None:
    url = start_gemini(server.url, 20 * 1024 * 1024).headers["x-goog-upload-url"]
    response = chunk(url, bytes(8 * 1024 * 1024), 4096)  # the wrong offset: refused before reading
    assert (response.status_code, response.headers["x-goog-upload-status"]) == (400, "final")
    assert "X-Goog-Upload-Offset" in response.json()["error"]["message"]
    assert chunk(url, b"first", 0).status_code == 200  # the session is still usable


@pytest.mark.parametrize(
    ("path", "headers", "shape"),
    [
        ("/v1/files/%0A0", ANTHROPIC, "anthropic"),
        ("/anthropic/v1/files/a%0Ab", ANTHROPIC, "anthropic"),
        ("/gemini/v1beta/files/a%0Ab", GEMINI, "gemini"),
    ],
)
def test_a_path_no_route_can_match_still_gets_its_dialects_404(
    server: FileDockServer, path: str, headers: dict[str, str], shape: str
) -> None:
    """Starlette's path patterns stop at a newline, so such a path never reaches the sub-app."""
    response = loopback.get(server.url + path, headers=headers)
    assert response.status_code == 404
    body = response.json()
    if shape == "anthropic":
        assert (body["type"], body["error"]["type"]) == ("error", "not_found_error")
    else:
        assert body["error"]["status"] == "NOT_FOUND"


def upload_gemini(base: str, data: bytes = b"hello", **headers: str) -> dict:
    start = start_gemini(base, len(data), **headers)
    done = chunk(start.headers["x-goog-upload-url"], data, 0, "upload, finalize")
    assert done.status_code == 200, done.text
    return dict(done.json()["file"])


@pytest.mark.parametrize("face", ["", "/gemini"])
@pytest.mark.parametrize("slashes", ["//", "/"], ids=["as-sent", "normalised"])
def test_gemini_download_by_a_files_uri_in_the_name(server: FileDockServer, face: str, slashes: str) -> None:
    # @google/genai for Node's files.download({file}) puts the File's uri where its name belongs.
    created = upload_gemini(server.url + face, b"by uri")
    uri = created["uri"].replace("://", ":" + slashes, 1)
    for suffix in (":download", ":download:download"):
        response = loopback.get(
            f"{server.url}{face}/v1beta/files/{uri}{suffix}", params={"alt": "media"}, headers=GEMINI
        )
        assert (response.status_code, response.content) == (200, b"by uri"), response.text
    missing = loopback.get(f"{server.url}{face}/v1beta/files/{uri[:-3]}zzz:download", headers=GEMINI)
    assert missing.status_code == 404 and missing.json()["error"]["status"] == "NOT_FOUND"


def test_gemini_download_by_uri_is_only_for_the_callers_project(
    make_server: Callable[..., FileDockServer],
) -> None:
    server = make_server(api_keys="key-alpha=alpha,key-beta=beta")
    created = upload_gemini(server.url, b"alpha only", **{"x-goog-api-key": "key-alpha"})
    path = f"{server.url}/v1beta/files/{created['uri']}:download"
    assert loopback.get(path, headers={"x-goog-api-key": "key-alpha"}).content == b"alpha only"
    other = loopback.get(path, headers={"x-goog-api-key": "key-beta"})
    assert (other.status_code, other.json()["error"]["status"]) == (404, "NOT_FOUND")
    anonymous = loopback.get(path)
    assert anonymous.status_code in (401, 403) and "error" in anonymous.json()
