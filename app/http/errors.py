"""The one installer of exception handlers: every app (the root and each dialect's sub-app)
turns errors into responses the same way, and only the renderer, the dialect's words and error
JSON, differs."""

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from app.core.errors import (
    BlobMissing,
    FileDockError,
    InvalidRequest,
    RangeNotSatisfiable,
    RouteNotFound,
    StorageUnavailable,
    UploadBusy,
)
from app.http.access_log import note_error

log = logging.getLogger("filedock.errors")
ORIGINAL_PATH = "filedock.original_path"  # the scope key of a path before it was re-pathed


@dataclass(frozen=True)
class BaseUrls:
    """Where a dialect is served, so a 404 caused by a wrong SDK `base_url` can name the right one.

    `bases` are the path prefixes a `base_url` may end in, the bare-root one first; `route` is a
    regex of what the SDK appends to its `base_url` (`/files…` for openai, `/v1/files…` for
    anthropic); `appends` says so in words for the hint, or is empty.
    """

    api: str
    bases: tuple[str, ...]
    route: str
    appends: str = ""

    def hint(self, path: str, origin: str) -> str | None:
        """Which base URL to use, if `path` is an SDK route under a base path FileDock does not
        serve (a missing `/v1`, a doubled one); None for any other path."""
        match = re.fullmatch(rf"(?P<base>.*?)(?:{self.route})", path, re.DOTALL)
        if match is None or match["base"] in self.bases:
            return None
        first_segment = match["base"].split("/")[1] if match["base"] else ""
        suggested = next(
            (base for base in self.bases if base and base.split("/")[1] == first_segment), self.bases[0]
        )
        where = f"under {suggested}" if suggested else "at the root"
        return f"FileDock serves {self.api} {where}{self.appends}; set base_url to {origin}{suggested}."


def transport_headers(exc: FileDockError) -> dict[str, str]:
    """Headers an error answer needs whatever the dialect: the size of the file a Range missed,
    and closing a connection whose body was not read (it cannot carry another request)."""
    headers = {}
    if isinstance(exc, RangeNotSatisfiable):
        headers["content-range"] = f"bytes */{exc.size}"
    if exc.body_unread:
        headers["connection"] = "close"
    return headers


@dataclass(frozen=True)
class Renderer:
    """A dialect's error JSON: for a domain error, and for an unexpected failure; and where the
    dialect is served, for the 404 of a wrong base URL (None: no hint)."""

    error: Callable[[Request, FileDockError], Response]
    server_error: Callable[[Request], Response]
    base_urls: Callable[[Request], BaseUrls | None] = field(default=lambda request: None)


def install_error_handlers(app: FastAPI, render: Renderer) -> None:
    async def domain_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, FileDockError)
        failing = isinstance(exc, StorageUnavailable) and not isinstance(exc, UploadBusy)  # busy is routine
        if failing:
            log.error("storage unavailable on %s %s: %s", request.method, request.url.path, exc.__cause__)
        note_error(request.scope, exc, storage=failing or isinstance(exc, BlobMissing))
        return render.error(request, exc)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        error: FileDockError = InvalidRequest(str(exc.detail))
        if exc.status_code in (404, 405):
            error = _route_not_found(request, render.base_urls(request))
        note_error(request.scope, error)
        return render.error(request, error)

    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        first = exc.errors()[0] if exc.errors() else {}
        location = first.get("loc", ())
        param = str(location[-1]) if location else None
        message = f"Invalid request: {first.get('msg', 'bad input')} ({'.'.join(map(str, location))})."
        error = InvalidRequest(message, param=param)
        note_error(request.scope, error)
        return render.error(request, error)

    async def client_gone(request: Request, exc: Exception) -> Response:
        # The client hung up mid-request; nobody reads this answer, and nothing was stored.
        note_error(request.scope, exc)
        return render.error(request, InvalidRequest("Client disconnected."))

    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        note_error(request.scope, exc)
        return render.server_error(request)

    app.add_exception_handler(FileDockError, domain_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(ClientDisconnect, client_gone)
    app.add_exception_handler(Exception, unexpected)


def _route_not_found(request: Request, base_urls: BaseUrls | None) -> RouteNotFound:
    """`Invalid URL (METHOD PATH)` with the path the client sent (not one re-pathed under a
    dialect's prefix), and which base URL to use if the path is one wrong base URL away from a
    route."""
    path = str(request.scope.get(ORIGINAL_PATH, request.url.path))
    message = f"Invalid URL ({request.method} {path})"
    hint = base_urls.hint(path, _origin(request)) if base_urls is not None else None
    return RouteNotFound(f"{message}: {hint}" if hint else message)


def _origin(request: Request) -> str:
    """The address the client reached FileDock at: `public_url` when configured, else the Host."""
    service = getattr(request.app.state, "service", None)
    configured = str(getattr(getattr(service, "settings", None), "public_url", "") or "").rstrip("/")
    if configured:
        return configured
    host = request.headers.get("host") or request.url.netloc
    return f"{request.url.scheme}://{host}"
