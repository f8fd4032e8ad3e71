"""ASGI middleware every dialect shares: the request id, the security headers, and the limit
on a request body that stalls. (The limits on the HTTP framing itself, header size and slow
headers, live in `app.server`, below the ASGI app.)"""

import asyncio
import secrets
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.errors import RequestTimeout
from app.http.headers import CONTENT_SECURITY_POLICY, SECURITY_HEADERS

REQUEST_ID = "filedock.request_id"  # where the request id is kept in the ASGI scope
_POLICY = CONTENT_SECURITY_POLICY.encode()
_OURS = {b"x-request-id"} | {name for name, _ in SECURITY_HEADERS}  # replaced on every response


def request_id(request: Request) -> str | None:
    value = request.scope.get(REQUEST_ID)
    return str(value) if value else None


class RequestIdMiddleware:
    """Gives every response an `x-request-id` (`req_…`), which the SDK exposes as `request_id`,
    and the `SECURITY_HEADERS`: the one place headers common to all responses are added. A
    response that states its own content security policy keeps it. (With the access log or the
    metrics on, `app.http.access_log.AccessLog` does this in the same pass as its counting.)"""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = scope[REQUEST_ID] = new_request_id()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = with_common_headers(message.get("headers", []), request_id)
            await send(message)

        await self.app(scope, receive, send_with_id)


def new_request_id() -> str:
    return "req_" + secrets.token_hex(16)


def with_common_headers(headers: list[tuple[bytes, bytes]], request_id: str) -> list[tuple[bytes, bytes]]:
    """`headers` with the request id and the security headers, which replace any the app set,
    except a content security policy of the app's own."""
    own_policy = [h for h in headers if h[0].lower() == _POLICY][:1]
    kept = [h for h in headers if h[0].lower() not in _OURS]
    common = [h for h in SECURITY_HEADERS if not (own_policy and h[0] == _POLICY)]
    return [*kept, (b"x-request-id", request_id.encode()), *own_policy, *common]


class EchoRequestId:
    """Repeats the request id (set by `RequestIdMiddleware`) in one more response header."""

    def __init__(self, app: ASGIApp, header: str) -> None:
        self.app = app
        self.header = header.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        value = scope.get(REQUEST_ID)
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


class BodyIdleTimeout:
    """Raises `RequestTimeout` (408) from `receive` when a body sends no byte for `idle_seconds`.

    Every body read in the app (`request.stream()`, the multipart reader, Gemini chunks) goes
    through ASGI `receive`, so this is the one place a stalled upload is noticed. The exception
    surfaces in the route as it reads, so the staging of the upload discards its temporary
    blob, and the dialect renders the 408 in its own error JSON.
    """

    def __init__(self, app: ASGIApp, idle_seconds: float) -> None:
        self.app = app
        self.idle_seconds = idle_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        watch = _IdleWatch(receive, self.idle_seconds)
        try:
            await self.app(scope, watch.receive, send)
        finally:
            watch.stop()


class _IdleWatch:
    """One request's `receive` with a deadline on each wait for its body.

    `asyncio.timeout` around each `receive` would arm and cancel a timer per chunk read (a
    256 MiB upload reads a thousand); this keeps one timer per request, which fires at the
    deadline of the wait under way or moves on to it, and cancels the request's task, as
    `asyncio.timeout` would, only when that wait has lasted `idle_seconds`.
    """

    def __init__(self, receive: Receive, idle_seconds: float) -> None:
        self._receive = receive
        self._idle_seconds = idle_seconds
        self._body_done = False
        self._waiting_since: float | None = None
        self._timer: asyncio.TimerHandle | None = None  # armed at the first wait
        self._task: asyncio.Task[Any] | None = None
        self._timed_out = False

    async def receive(self) -> Message:
        if self._body_done:
            # After the body, `receive` only waits for a disconnect (say, while a long
            # download streams): no deadline there.
            return await self._receive()
        if self._timer is None:
            self._loop = asyncio.get_running_loop()
            self._task = asyncio.current_task(self._loop)
            self._timer = self._loop.call_at(self._loop.time() + self._idle_seconds, self._check)
        self._waiting_since = self._loop.time()
        try:
            message = await self._receive()
        except asyncio.CancelledError:
            if self._timed_out and self._task is not None and self._task.uncancel() == 0:
                raise RequestTimeout(self._idle_seconds) from None
            raise
        finally:
            self._waiting_since = None
        if message["type"] != "http.request" or not message.get("more_body", False):
            self._body_done = True
            self.stop()
        return message

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def _check(self) -> None:
        now = self._loop.time()
        since = self._waiting_since
        if since is not None and now - since >= self._idle_seconds and self._task is not None:
            self._timed_out = True
            self._task.cancel()
            return
        deadline = (now if since is None else since) + self._idle_seconds
        self._timer = self._loop.call_at(deadline, self._check)
