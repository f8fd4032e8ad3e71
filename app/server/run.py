"""Serving the app with uvicorn: the one call into it, with FileDock's HTTP protocol, logging
and shutdown grace."""

import signal
from types import FrameType
from typing import NoReturn

import uvicorn

from app.logs import logging_config
from app.settings import Settings

# uvicorn's httptools protocol with header limits and zero-copy downloads. A string: each worker
# process imports it anew.
HTTP_PROTOCOL = "app.server.protocol:FileDockHttpProtocol"
# The protocol ends requests still running when the grace runs out (`app.server.shutdown`); they
# then have this long to unwind before uvicorn cancels what is left, its backstop.
UNWIND_SECONDS = 5


def serve(settings: Settings, app_factory: str) -> None:
    """Serve the app `app_factory` ("module:function") names until interrupted. uvicorn applies
    the logging config in the supervisor and again in each worker; its own access log is off,
    since `app.http.access_log` writes one line per request. On SIGTERM, requests in flight have
    `shutdown_grace_seconds` to finish; then the protocol ends them cleanly."""
    # uvicorn raises a SIGTERM it handled again once it has shut down, to the handler that was
    # there before its own: by default that would end a single-process server with status 143,
    # where the supervisor of several workers exits 0.
    signal.signal(signal.SIGTERM, _exit_zero)
    uvicorn.run(
        app_factory,
        factory=True,
        http=HTTP_PROTOCOL,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level=settings.log_level,
        log_config=logging_config(settings.log_level, settings.log_format),
        access_log=False,
        timeout_graceful_shutdown=settings.shutdown_grace_seconds + UNWIND_SECONDS,
        proxy_headers=False,
    )


def _exit_zero(signum: int, frame: FrameType | None) -> NoReturn:
    raise SystemExit(0)
