"""Domain errors as Anthropic error JSON, with the request id in the body and a `request-id` header.

`{"type": "error", "error": {"type", "message", "details"?: {"error_code"}}, "request_id"}`;
anthropic 2.x picks an exception subclass from `error.details.error_code`.
"""

import math

from fastapi.responses import JSONResponse

from app.core import errors
from app.http.errors import BaseUrls, Renderer, transport_headers
from app.http.middleware import request_id

# Most specific class first: the first `isinstance` match wins.
STATUS_AND_TYPE: list[tuple[type[errors.FileDockError], int, str]] = [
    (errors.Unauthenticated, 401, "authentication_error"),
    (errors.RouteNotFound, 404, "not_found_error"),
    (errors.NotFound, 404, "not_found_error"),
    (errors.FileTooLarge, 413, "request_too_large"),
    (errors.InvalidRequest, 400, "invalid_request_error"),
    (errors.UnsupportedMediaType, 400, "invalid_request_error"),
    (errors.RequestTooLarge, 413, "request_too_large"),
    (errors.RequestTimeout, 408, "timeout_error"),
    (errors.RangeNotSatisfiable, 416, "invalid_request_error"),
    (errors.RateLimited, 429, "rate_limit_error"),
    (errors.BlobMissing, 500, "api_error"),  # with x-should-retry: false, as every permanent error
    (errors.ServiceUnavailable, 503, "api_error"),
]
ERROR_CODES: dict[type[errors.FileDockError], str] = {
    errors.DownloadRefused: "file_not_downloadable",
    errors.QuotaExceeded: "storage_quota_exceeded",
}


def status_and_type(exc: errors.FileDockError) -> tuple[int, str]:
    for cls, status, error_type in STATUS_AND_TYPE:
        if isinstance(exc, cls):
            return status, error_type
    return 500, "api_error"


def message_of(exc: errors.FileDockError) -> str:
    """The error's words as Anthropic puts them."""
    if isinstance(exc, errors.FileNotFound):
        return f"File not found: {exc.file_id}"
    if isinstance(exc, errors.DownloadRefused):
        return f"File {exc.file_id} is not downloadable."
    return exc.message


def error_response(exc: errors.FileDockError, request_id: str | None) -> JSONResponse:
    status, error_type = status_and_type(exc)
    error: dict[str, object] = {"type": error_type, "message": message_of(exc)}
    if type(exc) in ERROR_CODES:
        error["details"] = {"error_code": ERROR_CODES[type(exc)]}
    headers = {"request-id": request_id} if request_id else {}
    if exc.retry_after_seconds is not None:
        headers["retry-after"] = str(math.ceil(exc.retry_after_seconds))
    elif not isinstance(exc, errors.RequestTimeout):  # a stalled body is transient: let it be retried
        headers["x-should-retry"] = "false"  # a permanent failure: the SDK must not retry it
    headers.update(transport_headers(exc))  # Content-Range, Connection: close
    return _body(status, error, request_id, headers)


def server_error_response(request_id: str | None) -> JSONResponse:
    error: dict[str, object] = {"type": "api_error", "message": "Internal server error"}
    return _body(500, error, request_id, {"request-id": request_id} if request_id else {})


def _body(
    status: int, error: dict[str, object], request_id: str | None, headers: dict[str, str]
) -> JSONResponse:
    body = {"type": "error", "error": error, "request_id": request_id}
    return JSONResponse(body, status_code=status, headers=headers)


# A 404 under any other base path, as a wrong SDK `base_url` gives, names the right one.
BASE_URLS = BaseUrls(
    "the Anthropic API", ("", "/anthropic"), r"/v1/files(?:/.*)?", " (the SDK adds /v1 itself)"
)
RENDERER = Renderer(
    error=lambda request, exc: error_response(exc, request_id(request)),
    server_error=lambda request: server_error_response(request_id(request)),
    base_urls=lambda request: BASE_URLS,
)
