"""`create_app(settings)`: opens the stores in the lifespan, mounts the dialects, renders errors.

Nothing runs at import time; `app.cli` builds the settings and serves the app.
"""

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request
from fastapi.responses import Response

from app import __version__
from app.core.batch_runner import BatchRunner
from app.core.batches import BatchService
from app.core.errors import FileDockError
from app.core.maintenance import Maintenance
from app.core.tenancy import Authenticator
from app.dialects.anthropic import errors as anthropic_errors
from app.dialects.anthropic.router import create_anthropic_app
from app.dialects.gemini import errors as gemini_errors
from app.dialects.gemini.router import create_gemini_app
from app.dialects.openai import errors as openai_errors
from app.dialects.openai import purposes as openai_purposes
from app.dialects.openai.batches_router import router as openai_batches_router
from app.dialects.openai.fast_reads import OpenAIFastReads
from app.dialects.openai.files_router import authorized_service
from app.dialects.openai.files_router import router as openai_files_router
from app.dialects.openai.uploads_router import router as openai_uploads_router
from app.dialects.openai.webhooks_router import router as openai_webhooks_router
from app.dialects.sniff import DialectDispatcher
from app.http.access_log import AccessLines, AccessLog, Exchanges, Observer
from app.http.apps import TELEMETRY_OFF
from app.http.docs import install_docs
from app.http.errors import BaseUrls, Renderer, install_error_handlers
from app.http.middleware import BodyIdleTimeout, RequestIdMiddleware
from app.http.operations import operations_router
from app.http.shutdown import EndAtShutdown
from app.metrics import RequestMetrics, UsageCache, observe_round
from app.settings import Settings
from app.stores import Stores, open_stores

log = logging.getLogger("filedock")
OPENAI_PREFIXES = ("/v1", "/openai/v1")


def create_app(settings: Settings, *, migrate: bool = True) -> FastAPI:
    """`migrate`: bring the database to the newest schema as the app starts; `filedock serve`'s
    workers skip it, since its start-up check has done it (`open_stores`)."""
    app = FastAPI(
        title="FileDock",
        version=__version__,
        summary="The OpenAI Files API, self-hosted.",
        lifespan=lambda app: _lifespan(app, settings, migrate),
        docs_url=None,  # FastAPI's page loads Swagger UI from a CDN: app.http.docs serves it instead
        redoc_url=None,
        telemetry=TELEMETRY_OFF,
    )
    app.state.request_metrics = RequestMetrics() if settings.metrics else None
    for prefix in OPENAI_PREFIXES:
        app.include_router(openai_files_router, prefix=prefix, tags=[f"OpenAI ({prefix})"])
        app.include_router(openai_uploads_router, prefix=prefix, tags=[f"OpenAI ({prefix})"])
        app.include_router(openai_webhooks_router, prefix=prefix, tags=[f"OpenAI ({prefix})"])
        app.include_router(openai_batches_router, prefix=prefix, tags=[f"OpenAI ({prefix})"])
    # /anthropic and /gemini; bare-root requests are sniffed by DialectDispatcher.
    for prefix, sub in (("/anthropic", create_anthropic_app()), ("/gemini", create_gemini_app())):
        sub.state = app.state  # the services opened in the lifespan
        app.mount(prefix, sub)
    # /healthz, /readyz, and /metrics unless metrics are off
    app.include_router(operations_router(authorized_service, metrics=settings.metrics))
    install_docs(app)  # /docs
    install_error_handlers(
        app,
        Renderer(
            error=_in_dialect_of_path,
            server_error=openai_errors.RENDERER.server_error,
            base_urls=_base_urls_of_path,
        ),
    )
    app.add_middleware(OpenAIFastReads)  # after the dispatcher: it sees only OpenAI requests
    app.add_middleware(BodyIdleTimeout, idle_seconds=settings.body_idle_timeout_seconds)
    app.add_middleware(DialectDispatcher)
    app.add_middleware(EndAtShutdown, render=_in_dialect_of_path)  # inside AccessLog: its line says 503
    _add_request_ids(app, settings, app.state.request_metrics)
    return app


def _add_request_ids(app: FastAPI, settings: Settings, metrics: RequestMetrics | None) -> None:
    """The outermost middleware: request ids and common headers, and with the access lines or
    the request metrics on, the counting they share, in the same pass (`AccessLog`)."""
    observers: list[Observer] = [] if metrics is None else [metrics]
    if settings.access_log:
        observers.append(AccessLines(settings.log_format))
    app.state.exchanges = Exchanges(observers) if observers else None
    if app.state.exchanges is None:
        app.add_middleware(RequestIdMiddleware)
    else:
        app.add_middleware(AccessLog, exchanges=app.state.exchanges)


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI, settings: Settings, migrate: bool) -> AsyncIterator[None]:
    async with open_stores(settings, migrate=migrate) as stores:
        await stores.files.check_ready()
        app.state.service = stores.files
        app.state.uploads = stores.uploads
        app.state.webhooks = stores.webhooks
        app.state.authenticator = await Authenticator.start(settings, stores.keys)
        app.state.usage_cache = UsageCache()
        maintenance = Maintenance(stores.files, stores.uploads, stores.maintenance, observe=observe_round)
        sweeper = asyncio.create_task(maintenance.run_forever(settings.sweep_interval_seconds))
        deliverer = asyncio.create_task(stores.deliverer.run_forever(settings.webhook_poll_interval_seconds))
        tasks = [sweeper, deliverer]
        metrics: RequestMetrics | None = app.state.request_metrics
        if metrics is not None:
            tasks.append(asyncio.create_task(metrics.flush_forever()))  # flushes once more when cancelled
        if app.state.authenticator.open_mode:
            log.warning(
                "open mode: any API key (or none) is accepted and acts in project 'default'. "
                "Configure keys (FILEDOCK_API_KEYS or `filedock keys create`) to require them."
            )
        async with _batch_runner(app, settings, stores):
            _freeze_start_up_objects()
            try:
                yield
            finally:
                if app.state.exchanges is not None:
                    app.state.exchanges.drain()  # before the metrics' last flush
                for task in tasks:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                await stores.deliverer.release_leases()


def _freeze_start_up_objects() -> None:
    """Move what start-up made (modules, routes, schemas: ~130k objects) out of the garbage
    collector's sight. A full collection visited them all, 65 ms with the worker stopped, every
    time the requests' surviving objects added up to a quarter of them: a latency spike
    for every request in flight. After `gc.freeze` it visits only what requests left."""
    gc.collect()
    gc.freeze()


@contextlib.asynccontextmanager
async def _batch_runner(app: FastAPI, settings: Settings, stores: Stores) -> AsyncIterator[None]:
    """The batch service, and with an upstream configured, this process's runner of batches."""
    if not settings.batch_upstream_url:
        app.state.batches = BatchService(stores.files, stores.batches)
        yield
        return
    from app.upstream import HttpUpstream  # httpx: only where batches run

    upstream = HttpUpstream(settings)
    runner = BatchRunner(
        stores.files,
        stores.batches,
        upstream,
        lambda expires_after: openai_purposes.batch_output_policy(settings, expires_after),
    )
    app.state.batches = BatchService(stores.files, stores.batches, on_created=runner.wake)
    task = asyncio.create_task(runner.run_forever())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await runner.aclose()
        await upstream.aclose()


def _in_dialect_of_path(request: Request, error: FileDockError) -> Response:
    """`error` in the error JSON of the dialect the path is under. The root app serves OpenAI's
    routes, but a path the mounts cannot match (Starlette's patterns stop at a newline) reaches
    it even under `/anthropic`."""
    path = request.url.path
    if path.startswith("/anthropic/"):
        return anthropic_errors.RENDERER.error(request, error)
    if path.startswith("/gemini/"):
        return gemini_errors.RENDERER.error(request, error)
    return openai_errors.RENDERER.error(request, error)


def _base_urls_of_path(request: Request) -> BaseUrls:
    """Where the dialect of the path is served, as `_in_dialect_of_path` picks the dialect."""
    path = request.url.path
    if path.startswith("/anthropic/"):
        return anthropic_errors.BASE_URLS
    if path.startswith("/gemini/"):
        return gemini_errors.BASE_URLS
    return openai_errors.BASE_URLS
