"""Ending a request that the server cuts short when its shutdown grace runs out.

The server (`app.server.shutdown`) marks the request's scope with `ENDED_AT_SHUTDOWN` and
cancels its task. The cancellation unwinds the route as any exception does: an upload's
staging discards its temporary blob, and a transaction not yet committed is rolled back, so
nothing of the request is kept. `EndAtShutdown` then answers in the dialect's error JSON
(`ShuttingDown`: 503, `Retry-After`, `Connection: close`) if no answer had started; if one had,
it ends quietly and the server closes the connection. Either way the access line says
`ShuttingDown`, and nothing reaches uvicorn to be logged as a traceback.
"""

import asyncio
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from app.core.errors import FileDockError, ShuttingDown
from app.http.access_log import note_error

ENDED_AT_SHUTDOWN = "filedock.ended_at_shutdown"  # the scope key the server sets before cancelling
BEFORE_ANSWER = "before the answer"  # its values: whether the answer had started
DURING_ANSWER = "during the answer"


class EndAtShutdown:
    """Turns the server's cancellation of a request at the end of the grace into an answer."""

    def __init__(self, app: ASGIApp, render: Callable[[Request, FileDockError], Response]) -> None:
        self.app = app
        self.render = render

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        except asyncio.CancelledError:
            ended = scope.get(ENDED_AT_SHUTDOWN)
            task = asyncio.current_task()
            if ended is None or task is None:
                raise  # any other cancellation is not ours to answer
            task.uncancel()  # answered here: the task goes on to send it
            error = ShuttingDown()
            note_error(scope, error)
            if ended == BEFORE_ANSWER:
                await self.render(Request(scope), error)(scope, receive, send)
