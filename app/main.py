"""`create_app(settings)`: opens the stores in the lifespan, mounts the dialects, renders errors.

Nothing runs at import time; `app.cli` builds the settings and serves the app.
"""

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import __version__
from app.auth import Authenticator
from app.blobs import open_blob_store
from app.dialects.anthropic import errors as anthropic_errors
from app.dialects.apps import mount_dialects
from app.dialects.gemini import errors as gemini_errors
from app.dialects.openai import errors as openai_errors
from app.dialects.openai.fast_reads import OpenAIFastReads
from app.dialects.openai.router import router as openai_router
from app.dialects.openai.uploads_router import router as openai_uploads_router
from app.dialects.sniff import DialectDispatcher
from app.errors import FileDockError, InvalidRequest, RouteNotFound, StorageUnavailable, UploadBusy
from app.headers import SECURITY_HEADERS
from app.limits import BodyIdleTimeout
from app.maintenance import Maintenance
from app.metadata.engine import create_engine
from app.metadata.keys_store import KeyStore
from app.metadata.migrate import upgrade_to_head_async
from app.metadata.store import MetadataStore
from app.metadata.uploads_store import UploadStore
from app.service import FileService, project_quota
from app.settings import Settings
from app.uploads import UploadService

log = logging.getLogger("filedock")
OPENAI_PREFIXES = ("/v1", "/openai/v1")


def create_app(settings: Settings) -> FastAPI:
    app = FastAPI(
        title="FileDock",
        version=__version__,
        summary="The OpenAI Files API, self-hosted.",
        lifespan=lambda app: _lifespan(app, settings),
    )
    for prefix in OPENAI_PREFIXES:
        app.include_router(openai_router, prefix=prefix, tags=[f"OpenAI ({prefix})"])
        app.include_router(openai_uploads_router, prefix=prefix, tags=[f"OpenAI ({prefix})"])
    mount_dialects(app)  # /anthropic and /gemini; bare-root requests are sniffed by DialectDispatcher
    app.add_api_route("/healthz", _healthz, methods=["GET"], include_in_schema=False)
    _add_error_handlers(app)
    app.add_middleware(OpenAIFastReads)  # after the dispatcher: it sees only OpenAI requests
    app.add_middleware(BodyIdleTimeout, idle_seconds=settings.body_idle_timeout_seconds)
    app.add_middleware(DialectDispatcher)
    app.add_middleware(RequestIdMiddleware)
    return app


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI, settings: Settings) -> AsyncIterator[None]:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    await upgrade_to_head_async(settings.database_url)
    engine = create_engine(
        settings.database_url, durable=settings.fsync, timeout_seconds=settings.storage_timeout_seconds
    )
    blobs = open_blob_store(settings)
    quota = project_quota(settings)
    service = FileService(settings, MetadataStore(engine, quota), blobs)
    uploads = UploadService(service, UploadStore(engine, quota))
    try:
        await service.check_ready()
        app.state.service = service
        app.state.uploads = uploads
        app.state.authenticator = await Authenticator.start(settings, KeyStore(engine))
        maintenance = Maintenance(service, uploads, engine)
        sweeper = asyncio.create_task(maintenance.run_forever(settings.sweep_interval_seconds))
        if app.state.authenticator.open_mode:
            log.warning(
                "open mode: any API key (or none) is accepted and acts in project 'default'. "
                "Configure keys (FILEDOCK_API_KEYS or `filedock keys create`) to require them."
            )
        yield
        sweeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeper
    finally:
        await blobs.aclose()
        await engine.dispose()


async def _healthz(request: Request) -> Response:
    service: FileService = request.app.state.service
    await service.metadata.ping()
    return JSONResponse({"status": "ok"})


def _add_error_handlers(app: FastAPI) -> None:
    def request_id(request: Request) -> str | None:
        value = request.scope.get("filedock.request_id")
        return str(value) if value else None

    async def domain_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, FileDockError)
        if isinstance(exc, StorageUnavailable) and not isinstance(exc, UploadBusy):  # busy is routine
            log.error("storage unavailable on %s %s: %s", request.method, request.url.path, exc.__cause__)
        return openai_errors.error_response(exc, request_id(request))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code in (404, 405):
            error: FileDockError = RouteNotFound(f"Invalid URL ({request.method} {request.url.path})")
        else:
            error = InvalidRequest(str(exc.detail))
        return in_dialect_of_path(request.url.path, error, request_id(request))

    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        first = exc.errors()[0] if exc.errors() else {}
        location = first.get("loc", ())
        param = str(location[-1]) if location else None
        message = f"Invalid request: {first.get('msg', 'bad input')} ({'.'.join(map(str, location))})."
        return openai_errors.error_response(InvalidRequest(message, param=param), request_id(request))

    async def client_gone(request: Request, exc: Exception) -> Response:
        # The client hung up mid-request; nobody reads this answer, and nothing was stored.
        return openai_errors.error_response(InvalidRequest("Client disconnected."), request_id(request))

    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return openai_errors.server_error_response(request_id(request))

    app.add_exception_handler(FileDockError, domain_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(ClientDisconnect, client_gone)
    app.add_exception_handler(Exception, unexpected)


def in_dialect_of_path(path: str, error: FileDockError, request_id: str | None) -> Response:
    """`error` in the error JSON of the dialect `path` is under. A path the mounts cannot match
    (Starlette's patterns stop at a newline) reaches the root app even under `/anthropic`."""
    if path.startswith("/anthropic/"):
        return anthropic_errors.error_response(error, request_id)
    if path.startswith("/gemini/"):
        return gemini_errors.error_response(error, upload=path.startswith("/gemini/upload/"))
    return openai_errors.error_response(error, request_id)


class RequestIdMiddleware:
    """Gives every response an `x-request-id` (`req_…`), which the SDK exposes as `request_id`,
    and the `SECURITY_HEADERS`: the one place headers common to all responses are added."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = "req_" + secrets.token_hex(16)
        scope["filedock.request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                ours = {b"x-request-id"} | {name for name, _ in SECURITY_HEADERS}
                headers = [h for h in message.get("headers", []) if h[0].lower() not in ours]
                headers += [(b"x-request-id", request_id.encode()), *SECURITY_HEADERS]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_id)
