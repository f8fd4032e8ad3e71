"""Tenancy through the official openai SDK: two clients with different keys see two stores, an admin
key acts for another project with `project=`, and quota and rate-limit errors surface as the SDK's
exceptions (the tenancy contract, issue 7).

Runs under openai 3.x and 2.x, so it imports only the standard library, pytest, httpx, openai and
tests helpers.
"""

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.frontdoor.tenancy_helpers import (
    ALPHA,
    BETA,
    TWO_PROJECTS,
    Cli,
    keys_setting,
    module_server,
    unknown_file_id,
    unknown_upload_id,
)
from tests.servers import FileDockServer


@pytest.fixture(scope="module")
def tenants(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FileDockServer]:
    yield from module_server(tmp_path_factory, "sdk-tenants", api_keys=TWO_PROJECTS)


def sdk(server: FileDockServer, key: str, **options: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.openai_url, api_key=key, max_retries=0, **options)


@pytest.fixture(scope="module")
def alpha(tenants: FileDockServer) -> Iterator[openai.OpenAI]:
    with sdk(tenants, ALPHA) as client:
        yield client


@pytest.fixture(scope="module")
def beta(tenants: FileDockServer) -> Iterator[openai.OpenAI]:
    with sdk(tenants, BETA) as client:
        yield client


def own_ids(client: openai.OpenAI) -> set[str]:
    return {f.id for f in client.files.list(limit=2)}  # auto-pagination across pages


def error_of(exc: openai.APIStatusError, *ids: str) -> tuple[int, str]:
    """Status and error body with `ids` replaced, comparable between two ids."""
    text = repr(exc.body)
    for value in ids:
        text = text.replace(value, "<ID>")
    return exc.status_code, text


def test_two_clients_see_only_their_own_files(alpha: openai.OpenAI, beta: openai.OpenAI) -> None:
    mine = {alpha.files.create(file=(f"a{i}.txt", b"alpha"), purpose="user_data").id for i in range(3)}
    theirs = {beta.files.create(file=(f"b{i}.txt", b"beta"), purpose="user_data").id for i in range(3)}
    assert mine <= own_ids(alpha) and not theirs & own_ids(alpha)
    assert theirs <= own_ids(beta) and not mine & own_ids(beta)


@pytest.mark.parametrize("call", ["retrieve", "content", "delete"])
def test_another_projects_file_is_not_found_like_an_unknown_id(
    alpha: openai.OpenAI, beta: openai.OpenAI, call: str
) -> None:
    created = alpha.files.create(file=("secret.txt", b"alpha only"), purpose="user_data")
    unknown = unknown_file_id()
    with pytest.raises(openai.NotFoundError) as other:
        getattr(beta.files, call)(created.id)
    with pytest.raises(openai.NotFoundError) as never:
        getattr(beta.files, call)(unknown)
    assert error_of(other.value, created.id) == error_of(never.value, unknown)
    assert alpha.files.content(created.id).content == b"alpha only"


def test_after_another_projects_id_is_not_found_like_a_never_issued_id(
    alpha: openai.OpenAI, beta: openai.OpenAI
) -> None:
    created = alpha.files.create(file=("a.txt", b"a"), purpose="user_data")
    beta.files.create(file=("b.txt", b"b"), purpose="user_data")
    unknown = unknown_file_id()
    with pytest.raises(openai.NotFoundError) as other:
        beta.files.list(after=created.id)
    with pytest.raises(openai.NotFoundError) as never:
        beta.files.list(after=unknown)
    assert error_of(other.value, created.id) == error_of(never.value, unknown)
    assert other.value.param == "after"


def test_another_projects_upload_is_not_found_like_an_unknown_id(
    alpha: openai.OpenAI, beta: openai.OpenAI
) -> None:
    upload = alpha.uploads.create(bytes=6, filename="u.txt", mime_type="text/plain", purpose="user_data")
    part = alpha.uploads.parts.create(upload_id=upload.id, data=b"abc")
    unknown = unknown_upload_id()
    calls = {
        "part": lambda upload_id: beta.uploads.parts.create(upload_id=upload_id, data=b"xyz"),
        "complete": lambda upload_id: beta.uploads.complete(upload_id=upload_id, part_ids=[part.id]),
        "cancel": lambda upload_id: beta.uploads.cancel(upload_id),
    }
    for name, call in calls.items():
        with pytest.raises(openai.NotFoundError) as other:
            call(upload.id)
        with pytest.raises(openai.NotFoundError) as never:
            call(unknown)
        assert error_of(other.value, upload.id) == error_of(never.value, unknown), name
    second = alpha.uploads.parts.create(upload_id=upload.id, data=b"def")
    done = alpha.uploads.complete(upload_id=upload.id, part_ids=[part.id, second.id])
    assert done.status == "completed" and done.file is not None
    assert done.file.id in own_ids(alpha)
    assert done.file.id not in own_ids(beta)


def test_chunked_upload_helper_stays_in_its_project(
    alpha: openai.OpenAI, beta: openai.OpenAI, tmp_path: Path
) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"0123456789" * 10)
    done = alpha.uploads.upload_file_chunked(
        file=path, mime_type="text/plain", purpose="user_data", part_size=30
    )
    assert done.file is not None
    assert done.file.id in own_ids(alpha) and done.file.id not in own_ids(beta)
    assert alpha.files.content(done.file.id).content == path.read_bytes()


async def test_async_clients_upload_side_by_side(tenants: FileDockServer) -> None:
    async with (
        openai.AsyncOpenAI(base_url=tenants.openai_url, api_key=ALPHA, max_retries=0) as a,
        openai.AsyncOpenAI(base_url=tenants.openai_url, api_key=BETA, max_retries=0) as b,
    ):
        made = await asyncio.gather(
            *(
                client.files.create(file=(f"x{i}.txt", b"x"), purpose="user_data")
                for i in range(8)
                for client in (a, b)
            )
        )
        alpha_made = {f.id for f in made[0::2]}
        beta_made = {f.id for f in made[1::2]}
        alpha_listed = {f.id async for f in a.files.list(limit=3)}
        beta_listed = {f.id async for f in b.files.list(limit=3)}
    assert alpha_made <= alpha_listed and not beta_made & alpha_listed
    assert beta_made <= beta_listed and not alpha_made & beta_listed


def test_wrong_key_is_authentication_error(tenants: FileDockServer) -> None:
    with sdk(tenants, "sk-not-a-key") as client, pytest.raises(openai.AuthenticationError) as caught:
        client.files.list()
    assert caught.value.status_code == 401
    assert caught.value.code == "invalid_api_key"


def test_admin_key_acts_for_a_project_with_the_project_option(
    tenants: FileDockServer, alpha: openai.OpenAI
) -> None:
    admin = Cli.of(tenants).create_key("sdk-ops", admin=True)
    created = alpha.files.create(file=("a.txt", b"for the admin"), purpose="user_data")
    with sdk(tenants, admin, project="alpha") as as_alpha:
        assert created.id in own_ids(as_alpha)
        assert as_alpha.files.content(created.id).content == b"for the admin"
        made = as_alpha.files.create(file=("by-admin.txt", b"admin"), purpose="user_data")
    assert made.id in own_ids(alpha)
    with sdk(tenants, admin) as as_ops:
        assert created.id not in own_ids(as_ops)
        with pytest.raises(openai.NotFoundError):
            as_ops.files.retrieve(created.id)


def test_non_admin_key_with_another_project_is_authentication_error(tenants: FileDockServer) -> None:
    with sdk(tenants, ALPHA, project="beta") as client, pytest.raises(openai.AuthenticationError):
        client.files.list()
    with sdk(tenants, ALPHA, project="alpha") as client:
        client.files.list()


# --- quota and rate limit as SDK exceptions -----------------------------------------------------


@pytest.fixture(scope="module")
def limits(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FileDockServer]:
    keys = keys_setting({"sk-quota": "quota", "sk-rate": "rate", "sk-rate-spare": "rate"})
    yield from module_server(
        tmp_path_factory, "sdk-limits", api_keys=keys, project_max_bytes="100", rate_limit_per_minute="5"
    )


def test_over_quota_is_bad_request_storage_limit_exceeded(limits: FileDockServer) -> None:
    with openai.OpenAI(base_url=limits.openai_url, api_key="sk-quota") as client:  # default retries
        client.files.create(file=("a.txt", b"a" * 60), purpose="user_data")
        with pytest.raises(openai.BadRequestError) as caught:
            client.files.create(file=("b.txt", b"b" * 60), purpose="user_data")
        assert caught.value.code == "storage_limit_exceeded"
        body = caught.value.body
        assert isinstance(body, dict)  # the inner error object, in openai 2.x and 3.x
        assert str(body["message"]).startswith("Storage limit exceeded for this project")
        assert [f.filename for f in client.files.list()] == ["a.txt"]


def test_rate_limit_is_rate_limit_error_with_retry_after(limits: FileDockServer) -> None:
    with sdk(limits, "sk-rate") as client, sdk(limits, "sk-rate-spare") as spare:
        for _ in range(5):
            client.files.list()
        with pytest.raises(openai.RateLimitError) as caught:
            client.files.list()
        spare.files.list()
    assert caught.value.code == "rate_limit_exceeded"
    headers = caught.value.response.headers
    assert int(headers["retry-after"]) >= 1
    assert int(headers["retry-after-ms"]) > 0
