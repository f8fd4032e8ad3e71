"""`app.dialects.anthropic.errors` and `app.dialects.gemini.errors`: complete tables, exact bodies."""

import json

import pytest

from app.core import errors
from app.dialects.anthropic import errors as anthropic_errors
from app.dialects.gemini import errors as gemini_errors
from tests.unit.test_openai_errors import DOMAIN_ERRORS, TRANSIENT_CLIENT_ERRORS, by_name, instance_of

TABLES = [
    pytest.param(anthropic_errors.STATUS_AND_TYPE, id="anthropic"),
    pytest.param(gemini_errors.STATUS_AND_CODE, id="gemini"),
]


@pytest.mark.parametrize("cls", by_name(DOMAIN_ERRORS))
@pytest.mark.parametrize("table", TABLES)
def test_error_tables_map_every_domain_error(table: list, cls: type[errors.FileDockError]) -> None:
    assert any(issubclass(cls, listed) for listed, _, _ in table), f"{cls.__name__} falls back to 500"


@pytest.mark.parametrize("table", TABLES)
def test_error_tables_have_no_unreachable_rows(table: list) -> None:
    for index, (cls, _, _) in enumerate(table):
        assert not any(issubclass(cls, base) for base, _, _ in table[:index]), f"{cls.__name__} is shadowed"


@pytest.mark.parametrize("cls", by_name(DOMAIN_ERRORS))
def test_anthropic_uses_5xx_only_for_server_side_failures(cls: type[errors.FileDockError]) -> None:
    status, _ = anthropic_errors.status_and_type(instance_of(cls))
    assert (status >= 500) == issubclass(cls, errors.ServiceUnavailable | errors.BlobMissing)
    # Only a transient 5xx may be retried: a missing blob stays missing.
    if status >= 500:
        headers = anthropic_errors.error_response(instance_of(cls), "req_1").headers
        assert ("x-should-retry" in headers) == (cls is errors.BlobMissing)
    # Statuses the SDK retries: only the transient client errors (stalled body, rate limit).
    assert (status in (408, 409, 429)) == issubclass(cls, TRANSIENT_CLIENT_ERRORS)


def test_anthropic_error_body_and_request_id_header() -> None:
    response = anthropic_errors.error_response(errors.FileNotFound("file_x"), "req_1")
    assert response.status_code == 404
    assert json.loads(response.body) == {
        "type": "error",
        "error": {"type": "not_found_error", "message": "File not found: file_x"},
        "request_id": "req_1",
    }
    assert response.headers["request-id"] == "req_1"
    assert response.headers["x-should-retry"] == "false"


def test_anthropic_download_refusal_names_its_error_code() -> None:
    body = json.loads(
        anthropic_errors.error_response(errors.DownloadRefused("file-abc", "assistants"), "req_1").body
    )
    assert body["error"]["details"] == {"error_code": "file_not_downloadable"}


def test_anthropic_file_too_large_is_413_request_too_large() -> None:
    assert anthropic_errors.status_and_type(errors.FileTooLarge("big")) == (413, "request_too_large")


def test_anthropic_storage_errors_may_be_retried() -> None:
    response = anthropic_errors.error_response(errors.StorageUnavailable("down"), "req_1")
    assert response.status_code == 503
    assert "x-should-retry" not in response.headers
    assert response.headers["retry-after"] == "1"


def test_gemini_error_body() -> None:
    response = gemini_errors.error_response(errors.InvalidRequest("bad"), upload=False)
    assert response.status_code == 400
    assert json.loads(response.body) == {
        "error": {"code": 400, "message": "bad", "status": "INVALID_ARGUMENT"}
    }
    assert "x-goog-upload-status" not in response.headers


def test_gemini_upload_errors_end_the_sdk_chunk_loop() -> None:
    response = gemini_errors.error_response(errors.InvalidRequest("bad"), upload=True)
    assert response.headers["x-goog-upload-status"] == "final"


def test_gemini_missing_or_wrong_key_is_unauthenticated() -> None:
    error = errors.Unauthenticated(gemini_errors.MISSING_KEY_MESSAGE, code="invalid_api_key")
    assert gemini_errors.status_and_code(error) == (401, "UNAUTHENTICATED")


def test_quota_errors_name_their_code_in_every_dialect() -> None:
    error = errors.QuotaExceeded("Storage limit exceeded for this project.")
    body = json.loads(anthropic_errors.error_response(error, "req_1").body)
    assert body["error"]["details"] == {"error_code": "storage_quota_exceeded"}
    assert gemini_errors.status_and_code(error) == (400, "FAILED_PRECONDITION")


def test_rate_limits_may_be_retried_later() -> None:
    error = errors.RateLimited("slow down", retry_after_seconds=1.2)
    response = anthropic_errors.error_response(error, "req_1")
    assert response.status_code == 429 and response.headers["retry-after"] == "2"
    assert "x-should-retry" not in response.headers
    assert gemini_errors.error_response(error, upload=False).status_code == 429


def test_gemini_server_error_is_500_internal() -> None:
    body = json.loads(gemini_errors.server_error_response(upload=False).body)
    assert body["error"]["status"] == "INTERNAL"


@pytest.mark.parametrize(
    ("render", "status"),
    [
        pytest.param(lambda exc: anthropic_errors.error_response(exc, "req_1"), 408, id="anthropic"),
        pytest.param(lambda exc: gemini_errors.error_response(exc, upload=True), 408, id="gemini"),
    ],
)
def test_stalled_body_is_408_and_closes_the_connection(render, status: int) -> None:
    response = render(errors.RequestTimeout(5))
    assert response.status_code == status
    assert response.headers["connection"] == "close"
    assert "x-should-retry" not in response.headers  # transient: the SDK may retry it
    assert "5 seconds" in response.body.decode()
