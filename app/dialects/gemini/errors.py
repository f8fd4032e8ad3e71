"""Domain errors as Google's error JSON: `{"error": {"code", "message", "status"}}`.

google-genai treats every status but 200 as an error (4xx `ClientError`, 5xx `ServerError`).
Replies to resumable-upload requests also carry `X-Goog-Upload-Status: final`, so the SDK's
chunk loop stops at once instead of re-posting the chunk with back-off.
"""

import math

from fastapi import Request
from fastapi.responses import JSONResponse

from app.core import errors
from app.http.errors import BaseUrls, Renderer, transport_headers

# Most specific class first: the first `isinstance` match wins.
STATUS_AND_CODE: list[tuple[type[errors.FileDockError], int, str]] = [
    (errors.Unauthenticated, 401, "UNAUTHENTICATED"),
    (errors.RouteNotFound, 404, "NOT_FOUND"),
    (errors.NotFound, 404, "NOT_FOUND"),
    (errors.DownloadRefused, 400, "FAILED_PRECONDITION"),
    (errors.QuotaExceeded, 400, "FAILED_PRECONDITION"),
    (errors.InvalidRequest, 400, "INVALID_ARGUMENT"),
    (errors.UnsupportedMediaType, 400, "INVALID_ARGUMENT"),
    (errors.RequestTooLarge, 413, "INVALID_ARGUMENT"),
    (errors.RequestTimeout, 408, "DEADLINE_EXCEEDED"),
    (errors.RangeNotSatisfiable, 416, "OUT_OF_RANGE"),
    # Google's code for unrecoverable data loss. google-genai retries nothing unless the caller
    # sets retry_options (whose default codes include 500); the header is for other clients.
    (errors.BlobMissing, 500, "DATA_LOSS"),
    (errors.RateLimited, 429, "RESOURCE_EXHAUSTED"),
    (errors.ServiceUnavailable, 503, "UNAVAILABLE"),
]
MISSING_KEY_MESSAGE = (
    "Method doesn't allow unregistered callers (callers without established identity). "
    "Please use API Key or other form of API consumer identity to call this API."
)


def status_and_code(exc: errors.FileDockError) -> tuple[int, str]:
    for cls, status, code in STATUS_AND_CODE:
        if isinstance(exc, cls):
            return status, code
    return 500, "INTERNAL"


def message_of(exc: errors.FileDockError) -> str:
    """The error's words as Google puts them."""
    if isinstance(exc, errors.FileNotFound):
        return f"File files/{exc.file_id.removeprefix('files/')} was not found."
    if isinstance(exc, errors.DownloadRefused):
        return f"Only generated files can be downloaded; files/{exc.file_id} was uploaded."
    return exc.message


def error_response(exc: errors.FileDockError, *, upload: bool) -> JSONResponse:
    status, code = status_and_code(exc)
    headers = {"x-goog-upload-status": "final"} if upload else {}
    if exc.retry_after_seconds is not None:
        headers["retry-after"] = str(math.ceil(exc.retry_after_seconds))
    elif status >= 500:
        headers["x-should-retry"] = "false"  # permanent (a missing blob): a retry fails the same way
    headers.update(transport_headers(exc))  # Content-Range, Connection: close
    return _body(status, message_of(exc), code, headers)


def server_error_response(*, upload: bool) -> JSONResponse:
    headers = {"x-goog-upload-status": "final"} if upload else {}
    return _body(500, "Internal error encountered.", "INTERNAL", headers)


def _body(status: int, message: str, code: str, headers: dict[str, str]) -> JSONResponse:
    body = {"error": {"code": status, "message": message, "status": code}}
    return JSONResponse(body, status_code=status, headers=headers)


def is_upload(request: Request) -> bool:
    """A resumable-upload request, whose replies say the upload is final."""
    return "/upload/" in request.url.path


# A 404 under any other base path, as a wrong SDK `base_url` gives, names the right one.
BASE_URLS = BaseUrls(
    "the Gemini API",
    ("", "/gemini"),
    r"(?:/upload)?/v1(?:beta)?/files(?:[/:].*)?",
    " (the SDK adds the API version itself)",
)
RENDERER = Renderer(
    error=lambda request, exc: error_response(exc, upload=is_upload(request)),
    server_error=lambda request: server_error_response(upload=is_upload(request)),
    base_urls=lambda request: BASE_URLS,
)
