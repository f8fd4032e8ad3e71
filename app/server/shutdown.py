"""The end of the shutdown grace, per worker: requests still running are ended cleanly.

On SIGTERM uvicorn stops accepting, closes idle connections and calls `shutdown()` on every
connection; it then waits for the requests in flight and, past its `timeout_graceful_shutdown`,
cancels their tasks, which logs a traceback per request and drops its connection. This mixin
acts first: the first `shutdown()` of the process logs how many requests have how long, and arms
one timer for the grace (`configure`). When it fires, each request still running is marked
(`ENDED_AT_SHUTDOWN` in its scope) and its task cancelled: the app
(`app.http.shutdown.EndAtShutdown`) unwinds it, discarding what it staged, and answers 503 in
its dialect's JSON, or, when its answer had started, the connection is closed here. uvicorn's
own cancellation stays as the backstop, `UNWIND_SECONDS` later (`app.server.run`).

Compose it like `class Protocol(GracefulEndMixin, ..., HttpToolsProtocol)`.
"""

import asyncio
import functools
import logging
from typing import Any

from uvicorn._types import ASGI3Application, ASGIReceiveCallable, ASGISendCallable, Scope
from uvicorn.protocols.http.httptools_impl import RequestResponseCycle
from uvicorn.server import ServerState

from app.http.shutdown import ENDED_AT_SHUTDOWN

log = logging.getLogger("filedock.server")
_grace_seconds = 30.0
_grace_timer: asyncio.TimerHandle | None = None  # one per process: a worker serves one server


def configure(grace_seconds: float) -> None:
    """Set how long requests in flight may run once this process starts shutting down."""
    global _grace_seconds
    _grace_seconds = grace_seconds


class GracefulEndMixin:
    """Keeps each running request's task, and ends the request when the grace runs out."""

    server_state: ServerState
    transport: asyncio.Transport
    loop: asyncio.AbstractEventLoop

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._running: dict[RequestResponseCycle, asyncio.Task[None]] = {}

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: ASGI3Application) -> None:
        super()._start_asgi_task(cycle, functools.partial(self._run_endable, cycle, app))  # type: ignore[misc]

    async def _run_endable(
        self,
        cycle: RequestResponseCycle,
        app: ASGI3Application,
        scope: Scope,
        receive: ASGIReceiveCallable,
        send: ASGISendCallable,
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._running[cycle] = task
        try:
            await app(scope, receive, send)
        except asyncio.CancelledError:
            if not scope.get(ENDED_AT_SHUTDOWN):
                raise
            # Only when the app did not answer itself (it is not FileDock's): no traceback, and
            # the client sees the connection end.
            task.uncancel()
            self.transport.close()
        finally:
            del self._running[cycle]

    def shutdown(self) -> None:
        super().shutdown()  # type: ignore[misc]
        global _grace_timer
        if _grace_timer is None:
            connections = self.server_state.connections
            in_flight = sum(1 for c in connections if isinstance(c, GracefulEndMixin) and c._running)
            log.info(
                "shutting down: %d request(s) in flight have up to %s s to finish", in_flight, _grace_seconds
            )
            _grace_timer = self.loop.call_later(_grace_seconds, _end_in_flight, connections)

    def end_in_flight(self) -> int:
        """End this connection's running requests; how many there were."""
        running = [(cycle, task) for cycle, task in self._running.items() if not task.done()]
        for cycle, task in running:
            cycle.scope[ENDED_AT_SHUTDOWN] = True  # type: ignore[literal-required]
            if cycle.response_started:
                # Too late for a 503: the client sees the answer cut short.
                cycle.disconnected = True
                self.transport.close()
            task.cancel()
        return len(running)


def _end_in_flight(connections: set[Any]) -> None:
    ended = sum(c.end_in_flight() for c in list(connections) if isinstance(c, GracefulEndMixin))
    if ended:
        log.warning(
            "shutdown grace of %s s ran out: ending %d request(s) still in flight", _grace_seconds, ended
        )
