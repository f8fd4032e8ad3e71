"""ASGI middleware every dialect shares: the request id, the security headers, and the limit
on a request body that stalls. (The limits on the HTTP framing itself, header size and slow
headers, live in `app.server`, below the ASGI app.)"""

import asyncio
import secrets

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
    response that states its own content security policy keeps it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = "req_" + secrets.token_hex(16)
        scope[REQUEST_ID] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = _with_common_headers(message.get("headers", []), request_id)
            await send(message)

        await self.app(scope, receive, send_with_id)


def _with_common_headers(headers: list[tuple[bytes, bytes]], request_id: str) -> list[tuple[bytes, bytes]]:
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
        body_done = False

        async def receive_in_time() -> Message:
            nonlocal body_done
            if body_done:
                # After the body, `receive` only waits for a disconnect (say, while a long
                # download streams): no deadline there.
                return await receive()
            try:
                async with asyncio.timeout(self.idle_seconds):
                    message = await receive()
            except TimeoutError:
                raise RequestTimeout(self.idle_seconds) from None
            body_done = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        await self.app(scope, receive_in_time, send)
