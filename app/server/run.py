"""Serving the app with uvicorn: the one call into it, with FileDock's HTTP protocol, logging
and shutdown grace."""

import uvicorn

from app.logs import logging_config
from app.settings import Settings

# uvicorn's httptools protocol with header limits and zero-copy downloads. A string: each worker
# process imports it anew.
HTTP_PROTOCOL = "app.server.protocol:FileDockHttpProtocol"


def serve(settings: Settings, app_factory: str) -> None:
    """Serve the app `app_factory` ("module:function") names until interrupted. uvicorn applies
    the logging config in the supervisor and again in each worker; its own access log is off,
    since `app.http.access_log` writes one line per request. On SIGTERM, requests in flight have
    `shutdown_grace_seconds` to finish before they are cancelled."""
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
        timeout_graceful_shutdown=settings.shutdown_grace_seconds,
        proxy_headers=False,
    )
