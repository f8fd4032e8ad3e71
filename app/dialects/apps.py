"""Each non-OpenAI dialect is a sub-application mounted at its prefix, rendering its own errors.

The sub-apps share the root app's `state` (the services opened in its lifespan). Errors raised
in a sub-app's routes, and its unknown routes, are rendered in that dialect's error JSON.
"""

import logging
from collections.abc import Callable

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import FileDockError, InvalidRequest, RouteNotFound, StorageUnavailable, UploadBusy

log = logging.getLogger("filedock")
RenderError = Callable[[Request, FileDockError], Response]
RenderServerError = Callable[[Request], Response]


def request_id(request: Request) -> str | None:
    value = request.scope.get("filedock.request_id")
    return str(value) if value else None


def create_dialect_app(
    title: str, router: APIRouter, render: RenderError, render_server_error: RenderServerError
) -> FastAPI:
    sub = FastAPI(title=title, openapi_url=None, docs_url=None, redoc_url=None)
    sub.include_router(router)

    async def domain_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, FileDockError)
        if isinstance(exc, StorageUnavailable) and not isinstance(exc, UploadBusy):
            log.error("storage unavailable on %s %s: %s", request.method, request.url.path, exc.__cause__)
        return render(request, exc)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code in (404, 405):
            return render(request, RouteNotFound(f"Invalid URL ({request.method} {request.url.path})"))
        return render(request, InvalidRequest(str(exc.detail)))

    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        first = exc.errors()[0] if exc.errors() else {}
        return render(request, InvalidRequest(f"Invalid request: {first.get('msg', 'bad input')}."))

    async def client_gone(request: Request, exc: Exception) -> Response:
        return render(request, InvalidRequest("Client disconnected."))

    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return render_server_error(request)

    sub.add_exception_handler(FileDockError, domain_error)
    sub.add_exception_handler(HTTPException, http_error)
    sub.add_exception_handler(RequestValidationError, validation_error)
    sub.add_exception_handler(ClientDisconnect, client_gone)
    sub.add_exception_handler(Exception, unexpected)
    return sub


class EchoRequestId:
    """Repeats the request id (set by the root app's middleware) in one more response header."""

    def __init__(self, app: ASGIApp, header: str) -> None:
        self.app = app
        self.header = header.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        value = scope.get("filedock.request_id")
        if scope["type"] != "http" or not value:
            await self.app(scope, receive, send)
            return

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0].lower() != self.header]
                headers.append((self.header, str(value).encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_id)


def mount_dialects(app: FastAPI) -> None:
    """Mount the Anthropic (`/anthropic`) and Gemini (`/gemini`) faces of the store on `app`."""
    # Imported here: both routers build their sub-app with `create_dialect_app` from this module.
    from app.dialects.anthropic.router import create_anthropic_app
    from app.dialects.gemini.router import create_gemini_app

    for prefix, sub in (("/anthropic", create_anthropic_app()), ("/gemini", create_gemini_app())):
        sub.state = app.state
        app.mount(prefix, sub)
