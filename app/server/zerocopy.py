"""The standard ASGI zero-copy send extension for uvicorn's httptools protocol.

uvicorn does not implement `http.response.zerocopysend`; this mixin does, for plain-text
connections. It offers the extension in `scope["extensions"]`, and an app that sees it may,
after `http.response.start` with a `content-length`, send one message

    {"type": "http.response.zerocopysend", "file": <object with fileno()>, "offset": <int>,
     "count": <int>, "more_body": False}

instead of `http.response.body` messages: `count` bytes of the file from `offset` then go from
the page cache to the socket with `os.sendfile`, without passing through Python. The app still
owns the file and closes it once `send` returns. Like uvicorn's own `send`, a client that went
away is not an error. Only what FileDock sends is supported: the whole remaining body in one
message, with an explicit offset and count.

Compose it like `class Protocol(ZeroCopySendMixin, LimitsMixin, HttpToolsProtocol)`.
"""

import asyncio
import functools
import os
from collections.abc import Callable
from typing import Any

from uvicorn._types import ASGI3Application, ASGIReceiveCallable, ASGISendCallable, ASGISendEvent, Scope
from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

EXTENSION = "http.response.zerocopysend"
MESSAGE = EXTENSION
MAX_SENDFILE_BYTES = 0x7FFFF000  # Linux sends at most this much per call


class ZeroCopySendMixin:
    """Wraps each request's ASGI app so its `send` also understands `http.response.zerocopysend`."""

    transport: asyncio.Transport

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: ASGI3Application) -> None:
        sock = self.transport.get_extra_info("socket")
        if sock is not None and self.transport.get_extra_info("sslcontext") is None:
            app = functools.partial(_app_with_sendfile, app, self.transport, cycle, sock.fileno())
        super()._start_asgi_task(cycle, app)  # type: ignore[misc]


async def _app_with_sendfile(
    app: ASGI3Application,
    transport: asyncio.Transport,
    cycle: RequestResponseCycle,
    socket_fd: int,
    scope: Scope,
    receive: ASGIReceiveCallable,
    send: ASGISendCallable,
) -> None:
    if scope["type"] != "http":
        return await app(scope, receive, send)
    scope.setdefault("extensions", {})[EXTENSION] = {}

    async def send_or_sendfile(message: ASGISendEvent) -> None:
        if message["type"] != MESSAGE:
            return await send(message)
        fields: dict[str, Any] = dict(message)
        if fields.get("more_body") or "offset" not in fields or "count" not in fields:
            raise RuntimeError(f"'{MESSAGE}' is supported with an offset, a count and no more body")
        fd = fields["file"].fileno()
        await _sendfile(transport, cycle, socket_fd, fd, fields["offset"], fields["count"])
        await send({"type": "http.response.body", "body": b"", "more_body": False})  # uvicorn completes

    await app(scope, receive, send_or_sendfile)


async def _sendfile(
    transport: asyncio.Transport,
    cycle: RequestResponseCycle,
    socket_fd: int,
    fd: int,
    offset: int,
    count: int,
) -> None:
    if not cycle.response_started or cycle.response_complete or cycle.chunked_encoding:
        raise RuntimeError(f"'{MESSAGE}' needs a started response with a content-length")
    if cycle.scope["method"] == "HEAD" or cycle.disconnected:
        return
    if count != cycle.expected_content_length:
        raise RuntimeError(f"'{MESSAGE}' count {count} is not the content-length left")
    if cycle.flow.write_paused:
        await cycle.flow.drain()
    while transport.get_write_buffer_size() and not transport.is_closing():  # noqa: ASYNC110
        await asyncio.sleep(0.001)  # the response head still queued: rare, and it must go first
    if count == 0 or transport.is_closing():
        return
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def pump() -> None:
        # Runs until the socket buffer is full, then again whenever the socket is writable.
        nonlocal offset, count
        if done.done():  # a writable event queued before the writer was removed
            return
        try:
            while count > 0 and not transport.is_closing():  # closed: its fd may be reused
                sent = os.sendfile(socket_fd, fd, offset, min(count, MAX_SENDFILE_BYTES))
                if sent == 0:
                    raise RuntimeError("the file is shorter than the content-length")
                offset += sent
                count -= sent
        except BlockingIOError:
            return
        except OSError:  # the client went away; uvicorn's connection_lost follows
            transport.close()
        except RuntimeError as exc:
            transport.close()
            done.set_exception(exc)
            return
        cycle.expected_content_length = count  # 0 unless closed early
        if count and not cycle.disconnected:
            cycle.disconnected = True  # nothing more may be written on this connection
        done.set_result(None)

    pump()
    if not done.done():
        await _pump_when_writable(loop, socket_fd, pump, done)
    return done.result()


async def _pump_when_writable(
    loop: asyncio.AbstractEventLoop, socket_fd: int, pump: Callable[[], None], done: "asyncio.Future[None]"
) -> None:
    # A second fd for the same socket: the event loop refuses a writer on the transport's own fd.
    watch_fd = os.dup(socket_fd)
    try:
        loop.add_writer(watch_fd, pump)
        await done
    finally:
        loop.remove_writer(watch_fd)
        os.close(watch_fd)
