"""The operator's routes: `/healthz` (liveness), `/readyz` (the stores answer) and `/metrics`
(unless metrics are off).

`/healthz` and `/readyz` need no key: a load balancer or an orchestrator calls them. `/metrics`
is guarded like an OpenAI route (`Authorization: Bearer`) when keys are configured; the guard is
passed in by the app, since the OpenAI dialect sits above this layer.
"""

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from app.core.files import FileService
from app.metrics import CONTENT_TYPE, RequestMetrics, UsageCache, exposition


def operations_router(authorize: Callable[..., Awaitable[Any]], *, metrics: bool = True) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    router.add_api_route("/healthz", read_health, methods=["GET", "HEAD"])
    router.add_api_route("/readyz", read_readiness, methods=["GET", "HEAD"])
    if metrics:
        router.add_api_route("/metrics", read_metrics, methods=["GET"], dependencies=[Depends(authorize)])
    return router


async def read_health(request: Request) -> Response:
    """Alive: the process answers and its database connection works."""
    await _service(request).metadata.ping()
    return JSONResponse({"status": "ok"})


async def read_readiness(request: Request) -> Response:
    """Ready: the database answers and the blob store accepts a write; else 503 naming which."""
    failing = await _service(request).failing_parts()
    if failing:
        return JSONResponse({"status": "unavailable", "failing": failing}, status_code=503)
    return JSONResponse({"status": "ok"})


async def read_metrics(request: Request) -> Response:
    """Every worker's counts, this one's up to this request (the others' flush on their own)."""
    request_metrics: RequestMetrics | None = request.app.state.request_metrics
    if request_metrics is not None:
        request.app.state.exchanges.drain()
        request_metrics.flush()
    cache: UsageCache = request.app.state.usage_cache
    usage = cache.fresh()
    if usage is None:
        usage = await _service(request).metadata.all_usage()
        cache.keep(usage)
    return Response(exposition(usage), media_type=CONTENT_TYPE)


def _service(request: Request) -> FileService:
    service: FileService = request.app.state.service
    return service
