"""Serving the app with uvicorn: the one call into it, with FileDock's HTTP protocol, logging
and shutdown grace; with more than one worker, through FileDock's supervisor."""

import contextlib
import signal
import socket
import sys
from pathlib import Path
from types import FrameType
from typing import NoReturn

import uvicorn

from app.logs import logging_config
from app.server.supervisor import STARTUP_FAILURE, SupervisorConfig, exec_supervisor
from app.settings import Settings

# uvicorn's httptools protocol with header limits, zero-copy downloads and large reads. A string:
# each worker process imports it anew.
HTTP_PROTOCOL = "app.server.protocol:FileDockProtocol"
# The protocol ends requests still running when the grace runs out (`app.server.shutdown`); they
# then have this long to unwind before uvicorn cancels what is left, its backstop.
UNWIND_SECONDS = 5


def serve(settings: Settings, app_factory: str, worker_command: list[str], metrics_dir: Path) -> None:
    """Serve the app `app_factory` ("module:function") names until interrupted: in this process
    with one worker; else this process becomes the supervisor (`app.server.supervisor`) of
    `settings.workers` processes, each running `worker_command --fd N` (which calls
    `serve_worker`) and counting into `metrics_dir`. The process id stays the same either way."""
    if settings.workers == 1:
        _run(uvicorn.Server(_config(settings, app_factory)))
        return
    exec_supervisor(
        SupervisorConfig(
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            worker_command=worker_command,
            log_level=settings.log_level,
            log_format=settings.log_format,
            metrics_dir=str(metrics_dir),
        )
    )


def serve_worker(settings: Settings, app_factory: str, fd: int) -> None:
    """One worker of the supervisor, serving on the listening socket it inherited as `fd`."""
    _run(uvicorn.Server(_config(settings, app_factory)), [socket.socket(fileno=fd)])


def _run(server: uvicorn.Server, sockets: list[socket.socket] | None = None) -> None:
    """As `uvicorn.run` ends: Ctrl-C is no traceback, a failed start is exit status 3. uvicorn
    raises a SIGTERM it handled again once it has shut down, to the handler that was there before
    its own: by default that would end a graceful stop with status 143 instead of 0."""
    signal.signal(signal.SIGTERM, _exit_zero)
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets)
    if not server.started:
        sys.exit(STARTUP_FAILURE)


def _config(settings: Settings, app_factory: str) -> uvicorn.Config:
    """uvicorn applies the logging config in each process; its own access log is off, since
    `app.http.access_log` writes one line per request. On SIGTERM, requests in flight have
    `shutdown_grace_seconds` to finish before they are cancelled. No WebSocket protocol:
    FileDock has no WebSocket route, and importing websockets would cost every worker."""
    return uvicorn.Config(
        app_factory,
        factory=True,
        http=HTTP_PROTOCOL,
        ws="none",
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        log_config=logging_config(settings.log_level, settings.log_format),
        access_log=False,
        timeout_graceful_shutdown=settings.shutdown_grace_seconds + UNWIND_SECONDS,
        proxy_headers=False,
    )


def _exit_zero(signum: int, frame: FrameType | None) -> NoReturn:
    raise SystemExit(0)
