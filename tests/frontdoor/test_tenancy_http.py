"""Tenancy on the wire with raw httpx, in all three dialects: projects are isolated on every route,
keys map to projects whatever the dialect's auth header, admin keys act for other projects, open
mode, and per-key rate limits (the tenancy contract, issue 7).

Only the standard library, pytest, httpx and tests helpers are imported: this file also runs from
the openai 2.x virtual environment, which does not have FileDock installed.
"""

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import loopback
from tests.frontdoor.tenancy_helpers import (
    ALPHA,
    BETA,
    PLAIN,
    QUICK,
    TWO_PROJECTS,
    WRONG,
    Cli,
    ServeProcess,
    anthropic_auth,
    anthropic_error,
    anthropic_ids,
    assert_same_as_unknown,
    comparable,
    create_openai,
    era_c_auth,
    gemini_auth,
    gemini_chunk,
    gemini_error,
    gemini_names,
    gemini_start,
    module_server,
    openai_auth,
    openai_error,
    openai_ids,
    to_anthropic_id,
    to_gemini_id,
    unknown_file_id,
    unknown_upload_id,
    upload_anthropic,
    upload_gemini,
    upload_openai,
)
from tests.servers import FileDockServer


@pytest.fixture(scope="module")
def tenants(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FileDockServer]:
    """Projects alpha and beta with a key each, and a bare key in project `default`."""
    yield from module_server(tmp_path_factory, "tenants", api_keys=TWO_PROJECTS)


@pytest.fixture(scope="module")
def alpha_file(tenants: FileDockServer) -> dict[str, Any]:
    """A file of project alpha that no test deletes."""
    created: dict[str, Any] = create_openai(tenants, ALPHA, b"alpha secret bytes", "alpha.txt")
    return created


@pytest.fixture(scope="module")
def admin_key(tenants: FileDockServer) -> str:
    """An admin key of project `ops`, made with the CLI while the server runs."""
    return Cli.of(tenants).create_key("ops", admin=True)


def still_alphas(server: FileDockServer, file: dict[str, Any]) -> None:
    response = loopback.get(f"{server.url}/openai/v1/files/{file['id']}/content", headers=openai_auth(ALPHA))
    assert (response.status_code, response.content) == (200, b"alpha secret bytes")


# --- isolation: OpenAI files ------------------------------------------------------------------


@pytest.mark.parametrize("prefix", [pytest.param("/openai", id="prefix"), pytest.param("", id="root")])
@pytest.mark.parametrize(
    ("method", "suffix", "headers"),
    [
        pytest.param("GET", "", {}, id="retrieve"),
        pytest.param("GET", "/content", {}, id="content"),
        pytest.param("HEAD", "/content", {}, id="content-head"),
        pytest.param("GET", "/content", {"range": "bytes=0-3"}, id="content-range"),
        pytest.param("GET", "/content", {"if-none-match": "*"}, id="content-if-none-match"),
        pytest.param("DELETE", "", {}, id="delete"),
    ],
)
def test_openai_other_projects_file_is_like_an_unknown_id(
    tenants: FileDockServer,
    alpha_file: dict[str, Any],
    prefix: str,
    method: str,
    suffix: str,
    headers: dict[str, str],
) -> None:
    unknown = unknown_file_id()
    sent = {**openai_auth(BETA), **headers}
    base = f"{tenants.url}{prefix}/v1/files"
    other = loopback.request(method, f"{base}/{alpha_file['id']}{suffix}", headers=sent)
    never = loopback.request(method, f"{base}/{unknown}{suffix}", headers=sent)
    assert_same_as_unknown(other, never, alpha_file["id"], unknown)
    if method != "HEAD":
        error = openai_error(other, 404)
        assert error["message"] == f"No such File object: {alpha_file['id']}"
    still_alphas(tenants, alpha_file)


def test_openai_after_another_projects_id_is_like_a_never_issued_id(
    tenants: FileDockServer, alpha_file: dict[str, Any]
) -> None:
    create_openai(tenants, BETA, b"beta's own", "b.txt")  # beta has files: the 404 is not "empty"
    unknown = unknown_file_id()
    url = f"{tenants.url}/openai/v1/files"
    other = loopback.get(url, headers=openai_auth(BETA), params={"after": alpha_file["id"]})
    never = loopback.get(url, headers=openai_auth(BETA), params={"after": unknown})
    assert_same_as_unknown(other, never, alpha_file["id"], unknown)
    assert openai_error(other, 404)["param"] == "after"
    # alpha itself may page from its own id
    own = loopback.get(url, headers=openai_auth(ALPHA), params={"after": alpha_file["id"]})
    assert own.status_code == 200, own.text


@pytest.fixture(scope="module")
def alpha_gone(tenants: FileDockServer) -> dict[str, str]:
    """Ids of alpha's files that are no longer live: one deleted, one expired (not yet swept)."""
    deleted = create_openai(tenants, ALPHA, b"deleted", "deleted.txt")
    loopback.delete(
        f"{tenants.url}/openai/v1/files/{deleted['id']}", headers=openai_auth(ALPHA)
    ).raise_for_status()
    expired = create_openai(tenants, ALPHA, b"expired", "expired.txt")
    changed = tenants.sql(
        "UPDATE files SET expires_at = ? WHERE id = ? RETURNING id", int(time.time()) - 1, expired["id"]
    )
    assert changed == [(expired["id"],)]
    return {"deleted": deleted["id"], "expired": expired["id"]}


@pytest.mark.parametrize("state", ["deleted", "expired"])
def test_openai_after_another_projects_gone_id_is_like_a_never_issued_id(
    tenants: FileDockServer, alpha_gone: dict[str, str], state: str
) -> None:
    """A deleted or expired id still pages for its owner (tombstone), and for nobody else."""
    theirs, unknown = alpha_gone[state], unknown_file_id()
    url = f"{tenants.url}/openai/v1/files"
    other = loopback.get(url, headers=openai_auth(BETA), params={"after": theirs})
    never = loopback.get(url, headers=openai_auth(BETA), params={"after": unknown})
    assert_same_as_unknown(other, never, theirs, unknown)
    own = loopback.get(url, headers=openai_auth(ALPHA), params={"after": theirs})
    assert own.status_code == 200, own.text


@pytest.mark.parametrize("state", ["deleted", "expired"])
def test_other_dialects_cursor_of_another_projects_gone_id_is_like_an_unknown_id(
    tenants: FileDockServer, alpha_gone: dict[str, str], state: str
) -> None:
    core, unknown = alpha_gone[state], unknown_file_id()
    for cursor in ("after_id", "before_id"):
        theirs, never_id = to_anthropic_id(core), to_anthropic_id(unknown)
        url = f"{tenants.url}/anthropic/v1/files"
        other = loopback.get(url, headers=anthropic_auth(BETA), params={cursor: theirs})
        never = loopback.get(url, headers=anthropic_auth(BETA), params={cursor: never_id})
        assert comparable(other, theirs) == comparable(never, never_id), cursor
    theirs, never_id = to_gemini_id(core), to_gemini_id(unknown)
    other = gemini_request(tenants, "GET", "/gemini/v1beta/files", BETA, False, pageToken=theirs)
    never = gemini_request(tenants, "GET", "/gemini/v1beta/files", BETA, False, pageToken=never_id)
    assert comparable(other, theirs) == comparable(never, never_id)


def test_lists_show_only_own_files_in_every_dialect(
    tenants: FileDockServer, alpha_file: dict[str, Any]
) -> None:
    beta_file = create_openai(tenants, BETA, b"beta", "beta.txt")
    plain_file = create_openai(tenants, PLAIN, b"plain", "plain.txt")
    mine = {ALPHA: alpha_file["id"], BETA: beta_file["id"], PLAIN: plain_file["id"]}
    for key, own in mine.items():
        others = {i for k, i in mine.items() if k != key}
        listed = openai_ids(tenants, key)
        assert own in listed and not others & listed, key
        listed = anthropic_ids(tenants, key)
        assert to_anthropic_id(own) in listed, key
        assert not {to_anthropic_id(i) for i in others} & listed, key
        listed = gemini_names(tenants, key)
        assert f"files/{to_gemini_id(own)}" in listed, key
        assert not {f"files/{to_gemini_id(i)}" for i in others} & listed, key


def test_openai_list_pages_only_through_own_files(tenants: FileDockServer) -> None:
    for i in range(3):
        create_openai(tenants, BETA, b"b", f"page{i}.txt")
    seen: list[str] = []
    after: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 1, **({"after": after} if after else {})}
        page = loopback.get(f"{tenants.url}/openai/v1/files", headers=openai_auth(BETA), params=params).json()
        seen += [f["id"] for f in page["data"]]
        if not page["has_more"]:
            break
        after = page["data"][-1]["id"]
    assert seen and len(seen) == len(set(seen))
    assert set(seen) == openai_ids(tenants, BETA)
    assert not set(seen) & openai_ids(tenants, ALPHA)


# --- isolation: OpenAI uploads ----------------------------------------------------------------


def start_upload(server: FileDockServer, key: str, size: int) -> dict[str, Any]:
    body = {"bytes": size, "filename": "up.txt", "mime_type": "text/plain", "purpose": "user_data"}
    response = loopback.post(f"{server.url}/openai/v1/uploads", headers=openai_auth(key), json=body)
    assert response.status_code == 200, response.text
    created: dict[str, Any] = response.json()
    return created


def add_part(server: FileDockServer, key: str, upload_id: str, data: bytes) -> httpx.Response:
    return loopback.post(
        f"{server.url}/openai/v1/uploads/{upload_id}/parts",
        headers=openai_auth(key),
        files={"data": ("upload", data, "application/octet-stream")},
    )


def test_openai_other_projects_upload_is_like_an_unknown_id(tenants: FileDockServer) -> None:
    upload = start_upload(tenants, ALPHA, 6)
    first = add_part(tenants, ALPHA, upload["id"], b"abc")
    assert first.status_code == 200, first.text
    part_id = first.json()["id"]
    unknown = unknown_upload_id()
    base = f"{tenants.url}/openai/v1/uploads"

    for upload_id in (upload["id"], unknown):
        assert add_part(tenants, BETA, upload_id, b"xyz").status_code == 404
    assert_same_as_unknown(
        add_part(tenants, BETA, upload["id"], b"xyz"),
        add_part(tenants, BETA, unknown, b"xyz"),
        upload["id"],
        unknown,
    )
    complete = {"part_ids": [part_id]}
    other = loopback.post(f"{base}/{upload['id']}/complete", headers=openai_auth(BETA), json=complete)
    never = loopback.post(f"{base}/{unknown}/complete", headers=openai_auth(BETA), json=complete)
    assert_same_as_unknown(other, never, upload["id"], unknown)
    other = loopback.post(f"{base}/{upload['id']}/cancel", headers=openai_auth(BETA))
    never = loopback.post(f"{base}/{unknown}/cancel", headers=openai_auth(BETA))
    assert_same_as_unknown(other, never, upload["id"], unknown)
    assert openai_error(other, 404)["message"] == f"No such Upload object: {upload['id']}"

    # None of that touched alpha's upload: it completes, and the file is alpha's alone.
    second = add_part(tenants, ALPHA, upload["id"], b"def")
    assert second.status_code == 200, second.text
    done = loopback.post(
        f"{base}/{upload['id']}/complete",
        headers=openai_auth(ALPHA),
        json={"part_ids": [part_id, second.json()["id"]]},
    )
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "completed"
    file_id = done.json()["file"]["id"]
    assert file_id in openai_ids(tenants, ALPHA)
    assert file_id not in openai_ids(tenants, BETA)
    content = loopback.get(f"{tenants.url}/openai/v1/files/{file_id}/content", headers=openai_auth(ALPHA))
    assert content.content == b"abcdef"


def test_completing_with_another_projects_part_id_is_like_an_unknown_part(tenants: FileDockServer) -> None:
    alphas = start_upload(tenants, ALPHA, 3)
    part = add_part(tenants, ALPHA, alphas["id"], b"abc").json()["id"]
    unknown_part = "part_" + unknown_upload_id().removeprefix("upload_")
    replies = []
    for part_id in (part, unknown_part):
        betas = start_upload(tenants, BETA, 3)
        url = f"{tenants.url}/openai/v1/uploads/{betas['id']}/complete"
        reply = loopback.post(url, headers=openai_auth(BETA), json={"part_ids": [part_id]})
        replies.append(comparable(reply, part_id, betas["id"]))
    assert replies[0] == replies[1]
    assert replies[0][0] == 400


def test_beta_cancelling_alphas_upload_leaves_it_pending(tenants: FileDockServer) -> None:
    upload = start_upload(tenants, ALPHA, 3)
    cancel = loopback.post(
        f"{tenants.url}/openai/v1/uploads/{upload['id']}/cancel", headers=openai_auth(BETA)
    )
    assert cancel.status_code == 404
    assert add_part(tenants, ALPHA, upload["id"], b"abc").status_code == 200
    own = loopback.post(f"{tenants.url}/openai/v1/uploads/{upload['id']}/cancel", headers=openai_auth(ALPHA))
    assert (own.status_code, own.json()["status"]) == (200, "cancelled")


# --- isolation: Anthropic ---------------------------------------------------------------------

ANTHROPIC_FACES = [
    pytest.param("/anthropic", anthropic_auth, id="prefix-x-api-key"),
    pytest.param("", anthropic_auth, id="root-x-api-key"),
    pytest.param("/anthropic", era_c_auth, id="prefix-era-c"),
    pytest.param("", era_c_auth, id="root-era-c"),
]


@pytest.mark.parametrize(("prefix", "auth"), ANTHROPIC_FACES)
@pytest.mark.parametrize(
    ("method", "suffix"),
    [
        pytest.param("GET", "", id="retrieve"),
        pytest.param("GET", "/content", id="download"),
        pytest.param("DELETE", "", id="delete"),
    ],
)
def test_anthropic_other_projects_file_is_like_an_unknown_id(
    tenants: FileDockServer,
    alpha_file: dict[str, Any],
    prefix: str,
    auth: Callable[[str | None], dict[str, str]],
    method: str,
    suffix: str,
) -> None:
    theirs, unknown = to_anthropic_id(alpha_file["id"]), to_anthropic_id(unknown_file_id())
    base = f"{tenants.url}{prefix}/v1/files"
    other = loopback.request(method, f"{base}/{theirs}{suffix}", headers=auth(BETA))
    never = loopback.request(method, f"{base}/{unknown}{suffix}", headers=auth(BETA))
    assert_same_as_unknown(other, never, theirs, unknown)
    assert anthropic_error(other, 404)["type"] == "not_found_error"
    still_alphas(tenants, alpha_file)


def test_anthropic_ids_filter_drops_another_projects_id(
    tenants: FileDockServer, alpha_file: dict[str, Any]
) -> None:
    own = upload_anthropic(tenants, BETA, b"beta anthropic")
    assert own.status_code == 200, own.text
    params = [("ids[]", to_anthropic_id(alpha_file["id"])), ("ids[]", own.json()["id"])]
    page = loopback.get(f"{tenants.url}/anthropic/v1/files", headers=anthropic_auth(BETA), params=params)
    assert page.status_code == 200, page.text
    assert [f["id"] for f in page.json()["data"]] == [own.json()["id"]]


@pytest.mark.parametrize("cursor", ["after_id", "before_id"])
def test_anthropic_cursor_of_another_project_is_like_an_unknown_id(
    tenants: FileDockServer, alpha_file: dict[str, Any], cursor: str
) -> None:
    """Generalises the contract's `after=` rule: a cursor may not reveal that an id exists."""
    theirs, unknown = to_anthropic_id(alpha_file["id"]), to_anthropic_id(unknown_file_id())
    url = f"{tenants.url}/anthropic/v1/files"
    other = loopback.get(url, headers=anthropic_auth(BETA), params={cursor: theirs})
    never = loopback.get(url, headers=anthropic_auth(BETA), params={cursor: unknown})
    assert comparable(other, theirs) == comparable(never, unknown)
    if other.status_code == 200:
        assert not {f["id"] for f in other.json()["data"]} & anthropic_ids(tenants, ALPHA)


# --- isolation: Gemini ------------------------------------------------------------------------

GEMINI_FACES = [
    pytest.param("/gemini/v1beta", False, id="prefix-v1beta-header"),
    pytest.param("/gemini/v1", True, id="prefix-v1-query"),
    pytest.param("/v1beta", False, id="root-v1beta-header"),
    pytest.param("/v1", True, id="root-v1-query"),
]


def gemini_request(
    server: FileDockServer, method: str, path: str, key: str | None, use_query: bool, **params: str
) -> httpx.Response:
    if use_query and key is not None:
        params = {**params, "key": key}
        headers: dict[str, str] = {}
    else:
        headers = gemini_auth(key)
    return loopback.request(method, f"{server.url}{path}", headers=headers, params=params)


@pytest.mark.parametrize(("prefix", "use_query"), GEMINI_FACES)
@pytest.mark.parametrize(
    ("method", "suffix", "params"),
    [
        pytest.param("GET", "", {}, id="get"),
        pytest.param("GET", ":download", {"alt": "media"}, id="download"),
        pytest.param("DELETE", "", {}, id="delete"),
    ],
)
def test_gemini_other_projects_file_is_like_an_unknown_id(
    tenants: FileDockServer,
    alpha_file: dict[str, Any],
    prefix: str,
    use_query: bool,
    method: str,
    suffix: str,
    params: dict[str, str],
) -> None:
    theirs, unknown = to_gemini_id(alpha_file["id"]), to_gemini_id(unknown_file_id())
    other = gemini_request(tenants, method, f"{prefix}/files/{theirs}{suffix}", BETA, use_query, **params)
    never = gemini_request(tenants, method, f"{prefix}/files/{unknown}{suffix}", BETA, use_query, **params)
    assert_same_as_unknown(other, never, theirs, unknown)
    assert gemini_error(other, 404)["status"] == "NOT_FOUND"
    still_alphas(tenants, alpha_file)


def test_gemini_page_token_of_another_project_is_like_an_unknown_id(
    tenants: FileDockServer, alpha_file: dict[str, Any]
) -> None:
    """Generalises the contract's `after=` rule to Gemini's page token."""
    theirs, unknown = to_gemini_id(alpha_file["id"]), to_gemini_id(unknown_file_id())
    other = gemini_request(tenants, "GET", "/gemini/v1beta/files", BETA, False, pageToken=theirs)
    never = gemini_request(tenants, "GET", "/gemini/v1beta/files", BETA, False, pageToken=unknown)
    assert comparable(other, theirs) == comparable(never, unknown)


@pytest.mark.parametrize("use_query", [pytest.param(False, id="header"), pytest.param(True, id="query")])
def test_gemini_resumable_upload_belongs_to_the_project_that_started_it(
    tenants: FileDockServer, use_query: bool
) -> None:
    started = gemini_start(tenants, ALPHA, 10, use_query=use_query)
    assert started.status_code == 200, started.text
    url = started.headers["x-goog-upload-url"]
    first = gemini_chunk(url, b"hello", 0, "upload")  # chunk requests carry no key
    assert (first.status_code, first.headers["x-goog-upload-status"]) == (200, "active")
    final = gemini_chunk(url, b"world", 5)
    assert final.status_code == 200, final.text
    name = final.json()["file"]["name"]
    bare = name.removeprefix("files/")
    assert name in gemini_names(tenants, ALPHA)
    assert name not in gemini_names(tenants, BETA)
    assert any(to_gemini_id(i) == bare for i in openai_ids(tenants, ALPHA))
    assert not any(to_gemini_id(i) == bare for i in openai_ids(tenants, BETA))
    unknown = to_gemini_id(unknown_file_id())
    for method, suffix, params in (("GET", "", {}), ("GET", ":download", {"alt": "media"})):
        other = gemini_request(tenants, method, f"/gemini/v1beta/files/{bare}{suffix}", BETA, False, **params)
        never = gemini_request(
            tenants, method, f"/gemini/v1beta/files/{unknown}{suffix}", BETA, False, **params
        )
        assert_same_as_unknown(other, never, bare, unknown)
    own = gemini_request(tenants, "GET", f"/gemini/v1beta/files/{bare}:download", ALPHA, False, alt="media")
    assert own.content == b"helloworld"


# --- auth: missing and wrong keys -------------------------------------------------------------

DIALECTS = ["openai", "anthropic", "era-c", "gemini-header", "gemini-query"]


def dialect_request(
    server: FileDockServer, dialect: str, op: str, file_id: str, key: str | None, **extra: str
) -> httpx.Response:
    """One call of `op` (list, retrieve, content, delete) on `file_id` in `dialect`, with `key`."""
    if dialect == "openai":
        path = {"list": "/openai/v1/files", "retrieve": f"/openai/v1/files/{file_id}"}.get(op)
        path = path or f"/openai/v1/files/{file_id}" + ("/content" if op == "content" else "")
        method = "DELETE" if op == "delete" else "GET"
        return loopback.request(method, server.url + path, headers={**openai_auth(key), **extra})
    if dialect in ("anthropic", "era-c"):
        auth = anthropic_auth if dialect == "anthropic" else era_c_auth
        aid = to_anthropic_id(file_id)
        path = "/v1/files" if op == "list" else f"/v1/files/{aid}" + ("/content" if op == "content" else "")
        method = "DELETE" if op == "delete" else "GET"
        return loopback.request(method, server.url + path, headers={**auth(key), **extra})
    gid = to_gemini_id(file_id)
    path = "/gemini/v1beta/files" if op == "list" else f"/gemini/v1beta/files/{gid}"
    params = {}
    if op == "content":
        path += ":download"
        params["alt"] = "media"
    headers = dict(extra)
    if key is not None:
        if dialect == "gemini-query":
            params["key"] = key
        else:
            headers.update(gemini_auth(key))
    method = "DELETE" if op == "delete" else "GET"
    return loopback.request(method, server.url + path, headers=headers, params=params)


def assert_401_shape(dialect: str, response: httpx.Response, key: str | None) -> None:
    if dialect == "openai":
        error = openai_error(response, 401)
        assert (error["type"], error["code"], error["param"]) == (
            "invalid_request_error",
            "invalid_api_key",
            None,
        )
        if key is None:
            assert error["message"].startswith("You didn't provide an API key."), error
        else:
            assert error["message"].startswith("Incorrect API key provided:"), error
            assert key not in error["message"]
    elif dialect in ("anthropic", "era-c"):
        assert anthropic_error(response, 401)["type"] == "authentication_error"
    else:
        assert gemini_error(response, 401)["status"] == "UNAUTHENTICATED"


# Without a key, gemini-query sends the same request as gemini-header: left out, not skipped.
BAD_KEY_CASES = [
    pytest.param(dialect, key, id=f"{dialect}-{'missing' if key is None else 'wrong'}")
    for dialect in DIALECTS
    for key in (None, WRONG)
    if not (key is None and dialect == "gemini-query")
]


@pytest.mark.parametrize(("dialect", "key"), BAD_KEY_CASES)
@pytest.mark.parametrize("op", ["retrieve", "content", "delete", "list"])
def test_bad_key_is_401_whether_or_not_the_file_exists(
    tenants: FileDockServer, alpha_file: dict[str, Any], dialect: str, key: str | None, op: str
) -> None:
    existing = dialect_request(tenants, dialect, op, alpha_file["id"], key)
    never = dialect_request(tenants, dialect, op, unknown_file_id(), key)
    assert_401_shape(dialect, existing, key)
    assert comparable(existing) == comparable(never)
    still_alphas(tenants, alpha_file)


@pytest.mark.parametrize("key", [pytest.param(None, id="missing"), pytest.param(WRONG, id="wrong")])
def test_bad_key_cannot_upload_in_any_dialect(tenants: FileDockServer, key: str | None) -> None:
    before = set(tenants.blob_files())  # other tests' files on this shared server may go meanwhile
    assert_401_shape("openai", upload_openai(tenants, key, expect=None), key)
    assert_401_shape("anthropic", upload_anthropic(tenants, key), key)
    assert_401_shape("gemini-header", gemini_start(tenants, key, 5), key)
    uploads = loopback.post(
        f"{tenants.url}/openai/v1/uploads",
        headers=openai_auth(key),
        json={"bytes": 1, "filename": "x.txt", "mime_type": "text/plain", "purpose": "user_data"},
    )
    assert_401_shape("openai", uploads, key)
    assert set(tenants.blob_files()) <= before  # not one blob was added


def test_gemini_query_key_maps_on_start(tenants: FileDockServer) -> None:
    started = gemini_start(tenants, WRONG, 5, use_query=True)
    assert_401_shape("gemini-query", started, WRONG)


# --- auth: every dialect's header names the same project --------------------------------------


def test_every_dialects_auth_header_maps_to_the_same_project(tenants: FileDockServer) -> None:
    created = create_openai(tenants, ALPHA, b"mapped", "mapped.txt")
    aid, gid = to_anthropic_id(created["id"]), to_gemini_id(created["id"])
    anthropic_routes = [
        ("/anthropic", anthropic_auth),
        ("", anthropic_auth),
        ("/anthropic", era_c_auth),
        ("", era_c_auth),
    ]
    for prefix, auth in anthropic_routes:
        meta = loopback.get(f"{tenants.url}{prefix}/v1/files/{aid}", headers=auth(ALPHA))
        assert (meta.status_code, meta.json()["size_bytes"]) == (200, 6), (prefix, auth, meta.text)
        content = loopback.get(f"{tenants.url}{prefix}/v1/files/{aid}/content", headers=auth(ALPHA))
        assert content.content == b"mapped"
        assert loopback.get(f"{tenants.url}{prefix}/v1/files/{aid}", headers=auth(BETA)).status_code == 404
        assert aid in {
            f["id"]
            for f in loopback.get(f"{tenants.url}{prefix}/v1/files", headers=auth(ALPHA)).json()["data"]
        }
    for prefix in ("/gemini/v1beta", "/gemini/v1", "/v1beta", "/v1"):
        for use_query in (False, True):
            got = gemini_request(tenants, "GET", f"{prefix}/files/{gid}", ALPHA, use_query)
            assert (got.status_code, got.json()["sizeBytes"]) == (200, "6"), (prefix, use_query, got.text)
            raw = gemini_request(
                tenants, "GET", f"{prefix}/files/{gid}:download", ALPHA, use_query, alt="media"
            )
            assert raw.content == b"mapped"
            assert gemini_request(tenants, "GET", f"{prefix}/files/{gid}", BETA, use_query).status_code == 404
    root = loopback.get(f"{tenants.url}/v1/files/{created['id']}", headers=openai_auth(ALPHA))
    assert root.status_code == 200


def test_upload_in_each_dialect_is_seen_in_the_others(tenants: FileDockServer) -> None:
    via_anthropic = upload_anthropic(tenants, BETA, b"from anthropic")
    assert via_anthropic.status_code == 200, via_anthropic.text
    via_gemini = upload_gemini(tenants, BETA, b"from gemini")
    assert via_gemini.status_code == 200, via_gemini.text
    beta_ids = openai_ids(tenants, BETA)
    alpha_ids = openai_ids(tenants, ALPHA)
    anthropic_core = "file-" + via_anthropic.json()["id"].removeprefix("file_")
    assert anthropic_core in beta_ids and anthropic_core not in alpha_ids
    bare = via_gemini.json()["file"]["name"].removeprefix("files/")
    assert any(to_gemini_id(i) == bare for i in beta_ids)
    assert not any(to_gemini_id(i) == bare for i in alpha_ids)


def test_bare_key_belongs_to_project_default(tenants: FileDockServer) -> None:
    create_openai(tenants, PLAIN, b"default data", "d.txt")
    projects = Cli.of(tenants).projects()
    plain_files = openai_ids(tenants, PLAIN)
    assert projects["default"]["files"] == len(plain_files)
    assert not plain_files & openai_ids(tenants, ALPHA)


# --- admin keys and OpenAI-Project ------------------------------------------------------------


def test_admin_key_acts_for_another_project_with_openai_project(
    tenants: FileDockServer, alpha_file: dict[str, Any], admin_key: str
) -> None:
    as_alpha = {"openai-project": "alpha"}
    assert alpha_file["id"] in openai_ids(tenants, admin_key, **as_alpha)
    assert alpha_file["id"] not in openai_ids(tenants, admin_key)  # without the header: project ops
    retrieved = loopback.get(
        f"{tenants.url}/openai/v1/files/{alpha_file['id']}", headers={**openai_auth(admin_key), **as_alpha}
    )
    assert retrieved.status_code == 200, retrieved.text
    assert (
        loopback.get(
            f"{tenants.url}/openai/v1/files/{alpha_file['id']}", headers=openai_auth(admin_key)
        ).status_code
        == 404
    )
    # other dialects honour the header too
    aid, gid = to_anthropic_id(alpha_file["id"]), to_gemini_id(alpha_file["id"])
    meta = loopback.get(
        f"{tenants.url}/anthropic/v1/files/{aid}", headers={**anthropic_auth(admin_key), **as_alpha}
    )
    assert meta.status_code == 200, meta.text
    got = loopback.get(
        f"{tenants.url}/gemini/v1beta/files/{gid}", headers={**gemini_auth(admin_key), **as_alpha}
    )
    assert got.status_code == 200, got.text
    # an upload made for alpha is alpha's
    made = upload_openai(tenants, admin_key, b"by admin", "admin.txt", extra_headers=as_alpha).json()
    assert made["id"] in openai_ids(tenants, ALPHA)
    assert made["id"] not in openai_ids(tenants, admin_key)
    assert made["id"] not in openai_ids(tenants, BETA)


@pytest.mark.parametrize("dialect", ["openai", "anthropic", "era-c", "gemini-header"])
def test_non_admin_key_with_a_foreign_openai_project_is_401(
    tenants: FileDockServer, alpha_file: dict[str, Any], dialect: str
) -> None:
    for op in ("list", "retrieve"):
        foreign = dialect_request(tenants, dialect, op, alpha_file["id"], ALPHA, **{"openai-project": "beta"})
        assert foreign.status_code == 401, foreign.text
        if dialect == "openai":
            assert openai_error(foreign, 401)["type"] == "invalid_request_error"
        elif dialect in ("anthropic", "era-c"):
            assert anthropic_error(foreign, 401)["type"] == "authentication_error"
        else:
            assert gemini_error(foreign, 401)["status"] == "UNAUTHENTICATED"
        own = dialect_request(tenants, dialect, op, alpha_file["id"], ALPHA, **{"openai-project": "alpha"})
        assert own.status_code == 200, own.text


def test_non_admin_key_cannot_upload_into_a_foreign_project(tenants: FileDockServer) -> None:
    before = openai_ids(tenants, BETA)
    refused = upload_openai(tenants, ALPHA, b"sneaky", extra_headers={"openai-project": "beta"}, expect=401)
    assert openai_error(refused, 401)
    assert openai_ids(tenants, BETA) == before


# --- open mode --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def open_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FileDockServer]:
    yield from module_server(tmp_path_factory, "open")


def test_open_mode_accepts_any_key_or_none_in_project_default(open_server: FileDockServer) -> None:
    created = create_openai(open_server, "sk-anything-1", b"open", "o.txt")
    assert created["id"] in openai_ids(open_server, "sk-something-else")
    assert created["id"] in openai_ids(open_server, None)
    assert to_anthropic_id(created["id"]) in anthropic_ids(open_server, "whatever")
    assert to_anthropic_id(created["id"]) in anthropic_ids(open_server, None)
    assert f"files/{to_gemini_id(created['id'])}" in gemini_names(open_server, None)
    assert f"files/{to_gemini_id(created['id'])}" in gemini_names(open_server, "g-key")
    assert Cli.of(open_server).projects()["default"]["files"] >= 1


def test_open_mode_is_logged(open_server: FileDockServer) -> None:
    log = open_server.log_path.read_text(errors="replace")
    assert re.search(r"open mode", log, re.IGNORECASE), log[-2000:]


def test_open_mode_on_keeps_configured_keys_in_their_projects(
    make_server: Callable[..., FileDockServer],
) -> None:
    server = make_server(open_mode="on", api_keys=f"{ALPHA}=alpha", **QUICK)
    alphas = create_openai(server, ALPHA, b"alpha", "a.txt")
    anyone = create_openai(server, "sk-random-1", b"anyone", "r.txt")
    assert alphas["id"] not in openai_ids(server, "sk-random-2")
    assert alphas["id"] not in openai_ids(server, None)
    assert anyone["id"] in openai_ids(server, "sk-random-2")
    assert anyone["id"] in openai_ids(server, None)
    assert anyone["id"] not in openai_ids(server, ALPHA)
    assert alphas["id"] in openai_ids(server, ALPHA)


@pytest.mark.parametrize("key", [pytest.param(None, id="no-key"), pytest.param("sk-any", id="any-key")])
def test_open_mode_off_without_keys_refuses_every_request(
    make_server: Callable[..., FileDockServer], key: str | None
) -> None:
    server = make_server(open_mode="off", **QUICK)
    for dialect in DIALECTS:
        if key is None and dialect == "gemini-query":
            continue
        for op in ("list", "retrieve", "content", "delete"):
            assert_401_shape(dialect, dialect_request(server, dialect, op, unknown_file_id(), key), key)
    assert_401_shape("openai", upload_openai(server, key, expect=None), key)
    assert_401_shape("anthropic", upload_anthropic(server, key), key)
    assert_401_shape("gemini-header", gemini_start(server, key, 3), key)
    assert server.blob_files() == []


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., ServeProcess]]:
    started: list[ServeProcess] = []

    def make(host: str, **settings: str) -> ServeProcess:
        process = ServeProcess(tmp_path / f"serve{len(started)}", host, settings)
        process.launch()
        started.append(process)
        return process

    yield make
    for process in started:
        process.stop()


def test_public_open_mode_refuses_to_start(serve: Callable[..., ServeProcess]) -> None:
    process = serve("0.0.0.0")
    code, output = process.exit_within(30)
    assert code is not None, "filedock serve --host 0.0.0.0 in open mode kept running"
    assert code != 0
    assert "FILEDOCK_API_KEYS" in output and "FILEDOCK_ALLOW_PUBLIC_OPEN_MODE" in output, output
    assert "Traceback" not in output, output


@pytest.mark.parametrize(
    ("host", "settings"),
    [
        pytest.param("0.0.0.0", {"allow_public_open_mode": "true"}, id="public-allowed"),
        pytest.param("0.0.0.0", {"api_keys": f"{ALPHA}=alpha"}, id="public-with-keys"),
        pytest.param("0.0.0.0", {"open_mode": "off"}, id="public-open-mode-off"),
        pytest.param("127.0.0.2", {}, id="loopback-net-open"),
    ],
)
def test_serve_starts(serve: Callable[..., ServeProcess], host: str, settings: dict[str, str]) -> None:
    process = serve(host, **settings)
    assert process.answers(30), process.exit_within(1)
    assert process.process is not None and process.process.poll() is None
    process.stop()


def test_public_serve_starts_when_the_database_holds_a_key(tmp_path: Path) -> None:
    """Auto mode counts `filedock keys create` keys too: such a server is not in open mode."""
    process = ServeProcess(tmp_path / "data", "0.0.0.0", {})
    cli = Cli(process.data_dir, process.environment())
    key = cli.create_key("keyed", create=True)  # before the first serve: a new database
    process.launch()
    try:
        assert process.answers(30), process.exit_within(1)
        url = f"http://127.0.0.1:{process.port}/openai/v1/files"
        assert loopback.get(url).status_code == 401
        assert loopback.get(url, headers=openai_auth(key)).status_code == 200
    finally:
        process.stop()


# --- rate limits ------------------------------------------------------------------------------

RATE_KEYS = {
    "sk-rl-openai": "alpha",
    "sk-rl-anthropic": "alpha",
    "sk-rl-era-c": "alpha",
    "sk-rl-gemini": "alpha",
    "sk-rl-spare": "alpha",
    "sk-rl-fallthrough": "alpha",
}


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FileDockServer]:
    keys = ",".join(f"{k}={p}" for k, p in RATE_KEYS.items())
    yield from module_server(tmp_path_factory, "limited", api_keys=keys, rate_limit_per_minute="5")


@pytest.mark.parametrize("dialect", ["openai", "anthropic", "era-c", "gemini-header"])
def test_sixth_request_in_a_minute_is_429(limited: FileDockServer, dialect: str) -> None:
    key = "sk-rl-" + dialect.removesuffix("-header")
    for i in range(5):
        response = dialect_request(limited, dialect, "list", unknown_file_id(), key)
        assert response.status_code == 200, (i, response.text)
    refused = dialect_request(limited, dialect, "list", unknown_file_id(), key)
    assert refused.status_code == 429, refused.text
    retry_after = int(refused.headers["retry-after"])
    assert 1 <= retry_after <= 60
    if dialect == "openai":
        error = openai_error(refused, 429)
        assert error["code"] == "rate_limit_exceeded"
        assert 0 < int(refused.headers["retry-after-ms"]) <= 60_000
    elif dialect in ("anthropic", "era-c"):
        assert anthropic_error(refused, 429)["type"] == "rate_limit_error"
    else:
        assert gemini_error(refused, 429)["status"] == "RESOURCE_EXHAUSTED"
    # another key, even of the same project, is not limited
    spare = dialect_request(limited, dialect, "list", unknown_file_id(), "sk-rl-spare")
    assert spare.status_code == 200, spare.text


def test_a_request_is_counted_once_when_the_fast_path_hands_it_on(limited: FileDockServer) -> None:
    """A retrieve of an unknown id passes the fast path (authenticated, counted) on to the
    regular route, which must not count it again: five such calls fit a limit of five."""
    headers = openai_auth("sk-rl-fallthrough")
    for i in range(5):
        response = loopback.get(f"{limited.url}/v1/files/{unknown_file_id()}", headers=headers)
        assert response.status_code == 404, (i, response.text)
    refused = loopback.get(f"{limited.url}/v1/files", headers=headers)
    assert refused.status_code == 429, refused.text
