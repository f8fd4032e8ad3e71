"""The end of the shutdown grace, per worker: requests still running are ended cleanly.

On SIGTERM uvicorn stops accepting, closes idle connections and calls `shutdown()` on every
connection; it then waits for the requests in flight and, past its `timeout_graceful_shutdown`,
cancels their tasks, which logs a traceback per request and drops its connection. This mixin
acts first: the first `shutdown()` of the process logs how many requests have how long, and arms
one timer for the grace (`configure`). When it fires, each request still running is marked in
its scope (`ENDED_AT_SHUTDOWN`: before or during its answer) and its task cancelled: the app
(`app.http.shutdown.EndAtShutdown`) unwinds it, discarding what it staged, and answers 503 in
its dialect's JSON; when the answer had started, the connection is closed here instead. uvicorn's
own cancellation stays as the backstop, a few seconds later (`app.server.run`).

Nothing here runs per request: the requests are found at the end of the grace, from uvicorn's
set of request tasks, each running its cycle's `run_asgi`.

Compose it like `class Protocol(GracefulEndMixin, ..., HttpToolsProtocol)`.
"""

import asyncio
import inspect
import logging

from uvicorn.protocols.http.httptools_impl import RequestResponseCycle
from uvicorn.server import ServerState

from app.http.shutdown import BEFORE_ANSWER, DURING_ANSWER, ENDED_AT_SHUTDOWN

log = logging.getLogger("filedock.server")
_grace_seconds = 30.0
_grace_timer: asyncio.TimerHandle | None = None  # one per process: a worker serves one server


def configure(grace_seconds: float) -> None:
    """Set how long requests in flight may run once this process starts shutting down."""
    global _grace_seconds
    _grace_seconds = grace_seconds


class GracefulEndMixin:
    """Starts the grace at the first connection's `shutdown()` of the process."""

    server_state: ServerState
    loop: asyncio.AbstractEventLoop

    def shutdown(self) -> None:
        super().shutdown()  # type: ignore[misc]
        global _grace_timer
        if _grace_timer is None:
            tasks = self.server_state.tasks
            log.info(
                "shutting down: %d request(s) in flight have up to %s s to finish", len(tasks), _grace_seconds
            )
            _grace_timer = self.loop.call_later(_grace_seconds, _end_in_flight, tasks)


def _end_in_flight(tasks: set[asyncio.Task[None]]) -> None:
    ended = [task for task in list(tasks) if not task.done() and _end(task)]
    if ended:
        log.warning(
            "shutdown grace of %s s ran out: ending %d request(s) still in flight", _grace_seconds, len(ended)
        )


def _end(task: asyncio.Task[None]) -> bool:
    """Mark the request `task` runs and cancel it; False if it runs no request cycle."""
    coro = task.get_coro()
    cycle = inspect.getcoroutinelocals(coro).get("self") if inspect.iscoroutine(coro) else None
    if not isinstance(cycle, RequestResponseCycle) or cycle.response_complete:
        return False
    if cycle.response_started:
        # Too late for a 503: the client sees the answer cut short.
        cycle.scope[ENDED_AT_SHUTDOWN] = DURING_ANSWER  # type: ignore[literal-required]
        cycle.disconnected = True
        cycle.transport.close()
    else:
        cycle.scope[ENDED_AT_SHUTDOWN] = BEFORE_ANSWER  # type: ignore[literal-required]
    task.cancel()
    return True
