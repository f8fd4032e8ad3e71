"""The one installer of exception handlers: every app (the root and each dialect's sub-app)
turns errors into responses the same way, and only the renderer, the dialect's words and error
JSON, differs."""

import logging
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from app.core.errors import FileDockError, InvalidRequest, RouteNotFound, StorageUnavailable, UploadBusy

log = logging.getLogger("filedock.errors")


@dataclass(frozen=True)
class Renderer:
    """A dialect's error JSON: for a domain error, and for an unexpected failure."""

    error: Callable[[Request, FileDockError], Response]
    server_error: Callable[[Request], Response]


def install_error_handlers(app: FastAPI, render: Renderer) -> None:
    async def domain_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, FileDockError)
        if isinstance(exc, StorageUnavailable) and not isinstance(exc, UploadBusy):  # busy is routine
            log.error("storage unavailable on %s %s: %s", request.method, request.url.path, exc.__cause__)
        return render.error(request, exc)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code in (404, 405):
            return render.error(request, RouteNotFound(f"Invalid URL ({request.method} {request.url.path})"))
        return render.error(request, InvalidRequest(str(exc.detail)))

    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        first = exc.errors()[0] if exc.errors() else {}
        location = first.get("loc", ())
        param = str(location[-1]) if location else None
        message = f"Invalid request: {first.get('msg', 'bad input')} ({'.'.join(map(str, location))})."
        return render.error(request, InvalidRequest(message, param=param))

    async def client_gone(request: Request, exc: Exception) -> Response:
        # The client hung up mid-request; nobody reads this answer, and nothing was stored.
        return render.error(request, InvalidRequest("Client disconnected."))

    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return render.server_error(request)

    app.add_exception_handler(FileDockError, domain_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(ClientDisconnect, client_gone)
    app.add_exception_handler(Exception, unexpected)
