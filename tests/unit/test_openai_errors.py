"""`app.dialects.openai.errors`: every domain error has a status, and none invites a pointless retry.

The subclasses are discovered, not listed, so a new error class without a table row fails here.
"""

import importlib
import inspect
import json
import pkgutil

import pytest

import app
from app.core import errors
from app.dialects.openai.errors import STATUS_AND_TYPE, error_response, server_error_response, status_and_type

# Statuses the openai SDK retries (spec §5.2, §5.3): a permanent failure must never use them.
RETRIED_CLIENT_STATUSES = {408, 409, 429}
# The client errors that pass with time, answered with a status the SDKs retry.
TRANSIENT_CLIENT_ERRORS = (errors.RateLimited, errors.RequestTimeout)


def _import_every_app_module() -> None:
    """Error classes defined outside app.errors (e.g. app.multipart.MalformedForm) count too."""
    for module in pkgutil.walk_packages(app.__path__, prefix="app."):
        importlib.import_module(module.name)


def _subclasses(cls: type[errors.FileDockError]) -> list[type[errors.FileDockError]]:
    found: list[type[errors.FileDockError]] = []
    for sub in cls.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return found


_import_every_app_module()
DOMAIN_ERRORS = sorted(set(_subclasses(errors.FileDockError)), key=lambda cls: cls.__qualname__)


def instance_of(cls: type[errors.FileDockError]) -> errors.FileDockError:
    """An instance built from the constructor's required arguments, whatever they are called."""
    required = [
        p
        for p in list(inspect.signature(cls.__init__).parameters.values())[1:]
        if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    return cls(*(["file-x"] * len(required)))


def by_name(classes: list[type[errors.FileDockError]]) -> list[object]:
    return [pytest.param(cls, id=f"{cls.__module__}.{cls.__qualname__}") for cls in classes]


def test_domain_errors_are_discovered_across_modules() -> None:
    names = {cls.__qualname__ for cls in DOMAIN_ERRORS}
    assert {"FileNotFound", "FileTooLarge", "StorageUnavailable", "MalformedForm"} <= names


@pytest.mark.parametrize("cls", by_name(DOMAIN_ERRORS))
def test_error_table_maps_every_domain_error(cls: type[errors.FileDockError]) -> None:
    assert any(issubclass(cls, listed) for listed, _, _ in STATUS_AND_TYPE), (
        f"{cls.__name__} falls back to 500"
    )


@pytest.mark.parametrize("cls", by_name(DOMAIN_ERRORS))
def test_error_table_never_uses_a_status_the_sdk_retries(cls: type[errors.FileDockError]) -> None:
    status, _ = status_and_type(instance_of(cls))
    # A stalled body and a rate limit pass with time: their 408 and 429 are meant to be retried.
    assert (status in RETRIED_CLIENT_STATUSES) == issubclass(cls, TRANSIENT_CLIENT_ERRORS)


@pytest.mark.parametrize("cls", by_name(DOMAIN_ERRORS))
def test_error_table_uses_5xx_only_for_server_side_failures(cls: type[errors.FileDockError]) -> None:
    status, error_type = status_and_type(instance_of(cls))
    assert (status >= 500) == issubclass(cls, errors.ServiceUnavailable | errors.BlobMissing)
    # The SDK retries every 5xx unless told not to: only a transient one may be retried.
    if status >= 500:
        headers = error_response(instance_of(cls), None).headers
        assert (headers.get("x-should-retry") == "false") == (cls is errors.BlobMissing)
    expected = "server_error" if status >= 500 else "invalid_request_error"
    assert error_type == ("requests" if cls is errors.RateLimited else expected)


def test_error_table_has_no_unreachable_rows() -> None:
    # The first isinstance match wins, so a row below one of its base classes never applies.
    for index, (cls, _, _) in enumerate(STATUS_AND_TYPE):
        earlier = [listed for listed, _, _ in STATUS_AND_TYPE[:index]]
        assert not any(issubclass(cls, base) for base in earlier), f"{cls.__name__} is shadowed"


@pytest.mark.parametrize(
    ("error", "status"),
    [
        pytest.param(errors.Unauthenticated("no key", code="invalid_api_key"), 401, id="unauthenticated"),
        pytest.param(errors.FileNotFound("file-abc"), 404, id="file-not-found"),
        pytest.param(errors.RouteNotFound("Invalid URL (GET /v1/filez)"), 404, id="route-not-found"),
        pytest.param(errors.FileTooLarge("too big"), 400, id="file-too-large"),
        pytest.param(errors.DownloadRefused("file-abc", "assistants"), 400, id="download-refused"),
        pytest.param(errors.UnsupportedMediaType("json"), 415, id="unsupported-media-type"),
        pytest.param(errors.RequestTooLarge("huge"), 413, id="request-too-large"),
        pytest.param(errors.RequestTimeout(5), 408, id="request-timeout"),
        pytest.param(errors.StorageUnavailable("down"), 503, id="storage-unavailable"),
    ],
)
def test_status_and_type_of_known_errors(error: errors.FileDockError, status: int) -> None:
    assert status_and_type(error)[0] == status


def test_error_response_renders_all_four_fields() -> None:
    response = error_response(errors.FileNotFound("file-abc"), "req_1")
    assert json.loads(response.body) == {
        "error": {
            "message": "No such File object: file-abc",
            "type": "invalid_request_error",
            "param": "id",
            "code": None,
        }
    }


def test_error_response_carries_the_request_id() -> None:
    assert error_response(errors.InvalidRequest("bad"), "req_abc").headers["x-request-id"] == "req_abc"


def test_error_response_without_request_id_sends_no_header() -> None:
    assert "x-request-id" not in error_response(errors.InvalidRequest("bad"), None).headers


def test_error_response_tells_the_sdk_when_to_retry_storage_errors() -> None:
    headers = error_response(errors.StorageUnavailable("down"), "req_1").headers
    assert 0 < float(headers["retry-after"]) <= 120  # the SDK ignores delays above 120 s
    assert int(headers["retry-after-ms"]) == 1000 * int(headers["retry-after"])


def test_error_response_closes_the_connection_after_an_unread_body() -> None:
    assert error_response(errors.RequestTooLarge("huge"), "req_1").headers["connection"] == "close"
    assert error_response(errors.RequestTimeout(5), "req_1").headers["connection"] == "close"


def test_server_error_response_is_a_500_server_error() -> None:
    response = server_error_response("req_1")
    body = json.loads(response.body)
    assert (response.status_code, body["error"]["type"]) == (500, "server_error")
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert response.headers["x-request-id"] == "req_1"


def test_rate_limited_tells_the_sdk_when_to_retry() -> None:
    headers = error_response(errors.RateLimited("slow down", retry_after_seconds=2.5), None).headers
    assert (headers["retry-after"], headers["retry-after-ms"]) == ("3", "2500")
