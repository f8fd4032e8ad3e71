"""Domain errors as OpenAI error JSON: `{"error": {"message", "type", "param", "code"}}`.

No permanent failure may use a status the SDK retries (408, 409, 429, 5xx), see spec §5.3.
"""

import math

from fastapi.responses import JSONResponse

from app.core import errors
from app.http.errors import BaseUrls, Renderer, transport_headers
from app.http.middleware import request_id

# Most specific class first: the first `isinstance` match wins.
STATUS_AND_TYPE: list[tuple[type[errors.FileDockError], int, str]] = [
    (errors.Unauthenticated, 401, "invalid_request_error"),
    (errors.RouteNotFound, 404, "invalid_request_error"),
    (errors.NotFound, 404, "invalid_request_error"),
    (errors.InvalidRequest, 400, "invalid_request_error"),
    (errors.UnsupportedMediaType, 415, "invalid_request_error"),
    (errors.RequestTooLarge, 413, "invalid_request_error"),
    (errors.RequestTimeout, 408, "invalid_request_error"),
    (errors.RangeNotSatisfiable, 416, "invalid_request_error"),
    (errors.RateLimited, 429, "requests"),
    (errors.BlobMissing, 500, "server_error"),
    (errors.ServiceUnavailable, 503, "server_error"),
]


def status_and_type(exc: errors.FileDockError) -> tuple[int, str]:
    for cls, status, error_type in STATUS_AND_TYPE:
        if isinstance(exc, cls):
            return status, error_type
    return 500, "server_error"


def message_of(exc: errors.FileDockError) -> str:
    """The error's words as OpenAI puts them."""
    if isinstance(exc, errors.FileNotFound):
        return f"No such File object: {exc.file_id}"
    if isinstance(exc, errors.DownloadRefused):
        return f"Not allowed to download files of purpose: {exc.purpose}"
    return exc.message


def error_response(exc: errors.FileDockError, request_id: str | None) -> JSONResponse:
    status, error_type = status_and_type(exc)
    body = {"error": {"message": message_of(exc), "type": error_type, "param": exc.param, "code": exc.code}}
    headers = {"x-request-id": request_id} if request_id else {}
    if exc.retry_after_seconds is not None:
        headers["retry-after"] = str(math.ceil(exc.retry_after_seconds))
        headers["retry-after-ms"] = str(math.ceil(exc.retry_after_seconds * 1000))
    if status >= 500 and exc.retry_after_seconds is None:
        # A permanent server-side failure (a missing blob): the SDK retries every 5xx unless
        # told not to, and a retry would fail the same way.
        headers["x-should-retry"] = "false"
    headers.update(transport_headers(exc))  # Content-Range, Connection: close
    return JSONResponse(body, status_code=status, headers=headers)


def server_error_response(request_id: str | None) -> JSONResponse:
    body = {
        "error": {
            "message": "The server had an error while processing your request. Sorry about that!",
            "type": "server_error",
            "param": None,
            "code": None,
        }
    }
    return JSONResponse(body, status_code=500, headers={"x-request-id": request_id} if request_id else {})


# A 404 under any other base path, as a wrong SDK `base_url` gives, names the right one.
BASE_URLS = BaseUrls("the OpenAI API", ("/v1", "/openai/v1"), r"/(?:files|uploads)(?:/.*)?", "")
RENDERER = Renderer(
    error=lambda request, exc: error_response(exc, request_id(request)),
    server_error=lambda request: server_error_response(request_id(request)),
    base_urls=lambda request: BASE_URLS,
)
