"""uvicorn's httptools protocol with the two limits it lacks (header size and header time) and
the standard ASGI zero-copy send extension: the only code of FileDock that touches server
internals. `tests/unit/test_server_protocol.py` checks the uvicorn hooks it relies on.

httptools buffers a request's headers without bound and waits for them forever, so one client
could hold memory with a huge header, or a connection (and a worker's slot) with headers sent
a byte every few seconds ("slowloris"). This subclass answers 431 to headers over
`max_header_bytes` and 408 to headers not complete `header_timeout_seconds` after the request's
first byte (or after the connection opened, if no byte came), and closes the connection.

`filedock serve` passes `FileDockProtocol` (this protocol behind `app.server.reads`' large
reads) to uvicorn as `http="app.server.protocol:FileDockProtocol"`: a string, since each worker
process imports it anew. The limits come from the worker's settings through `configure`, which
the app factory calls before the worker accepts a connection.
"""

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from app.http.headers import SECURITY_HEADERS
from app.server.passthrough import BodyPassThroughMixin
from app.server.reads import LargeReads
from app.server.shutdown import GracefulEndMixin
from app.server.zerocopy import ZeroCopySendMixin


@dataclass(frozen=True)
class HeaderLimits:
    max_header_bytes: int = 64 * 1024
    header_timeout_seconds: float = 10.0


_limits = HeaderLimits()
log = logging.getLogger("filedock.access")


def configure(limits: HeaderLimits) -> None:
    """Set the limits every connection of this process gets from now on."""
    global _limits
    _limits = limits


class _HeadersTooLarge(Exception):
    """Raised in a parser callback to stop httptools; uvicorn then calls `send_400_response`."""


class LimitedHttpToolsProtocol(BodyPassThroughMixin, HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_header_bytes = _limits.max_header_bytes
        self.header_timeout_seconds = _limits.header_timeout_seconds
        self._header_bytes = 0  # of the current request's line and headers, as parsed
        self._unparsed_bytes = 0  # of whole reads that left its headers incomplete
        self._in_headers = False
        self._header_timer: asyncio.TimerHandle | None = None
        self._refusal: tuple[int, str] | None = None
        self._deferred = False  # the refusal waits for the answers to complete requests before it

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        # A connection that never sends a byte holds a slot too; after a response, uvicorn's
        # own keep-alive timeout closes an idle connection instead.
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refusal is not None:
            return  # already answered and closing: ignore the rest
        # httptools calls `on_header` only once a line is complete and buffers it until then,
        # so one endless header line is caught by counting whole reads while headers are
        # incomplete. A read that began inside the previous request's body (pipelining) does
        # not count: it may hold more of that body than of these headers.
        counts = self._in_headers or self.cycle is None or self.cycle.response_complete
        super().data_received(data)
        if self._refusal is None and counts and self._in_headers:
            self._unparsed_bytes += len(data)
            if self._unparsed_bytes > self.max_header_bytes:
                self._refuse(431, self._too_large_message())

    def on_body(self, body: bytes) -> None:
        # uvicorn appends each body chunk to a bytearray and hands `bytes(bytearray)` to the app:
        # two copies of every uploaded byte. Starting from empty `bytes` instead, `b"" + body`
        # is `body` itself, and `bytes(body)` too: the chunk reaches the app as httptools made
        # it. Chunks that pile up before the app reads still join, as bytes.
        if self.cycle is not None and not self.cycle.body:
            self.cycle.body = b""  # type: ignore[assignment]
        super().on_body(body)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_bytes = self._unparsed_bytes = 0
        self._in_headers = True
        self._arm_header_timer()

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)  # ": " and CRLF
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_headers = False
        self._cancel_header_timer()
        super().on_headers_complete()

    def send_400_response(self, msg: str) -> None:
        # uvicorn's answer to a parser error; ours when the error was our own refusal.
        status, message = self._refusal or (400, msg)
        if self.cycle is not None and not self.cycle.response_complete and not self.cycle.more_body:
            # The bytes before the bad ones were whole requests (pipelined, or one request and
            # garbage in the same read) still being answered. Their answers go out in full
            # first, then this refusal: a client that never saw its 200 would retry, and store
            # its file twice. The rest of the input is ignored meanwhile.
            self._refusal = (status, message)
            self._deferred = True
            self._cancel_header_timer()
            return
        self._refuse(status, message)

    def on_response_complete(self) -> None:
        super().on_response_complete()  # starts the next queued request, if any
        last_answered = self.cycle is not None and self.cycle.response_complete  # none queued
        if self._deferred and self._refusal is not None and last_answered:
            self._deferred = False
            self._refuse(*self._refusal)

    def _count(self, size: int) -> None:
        self._header_bytes += size
        if self._header_bytes > self.max_header_bytes:
            self._refusal = (431, self._too_large_message())
            raise _HeadersTooLarge  # httptools stops parsing and uvicorn calls send_400_response

    def _too_large_message(self) -> str:
        return f"Request header fields too large: at most {self.max_header_bytes} bytes are allowed."

    def _arm_header_timer(self) -> None:
        self._cancel_header_timer()
        self._header_timer = self.loop.call_later(self.header_timeout_seconds, self._headers_timed_out)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_timed_out(self) -> None:
        self._header_timer = None
        if self.cycle is not None and not self.cycle.response_complete:
            # A pipelined request's headers stalled while the one before it is still being
            # answered: close once that answer is complete, never in the middle of it.
            self.cycle.keep_alive = False
            return
        seconds = self.header_timeout_seconds
        self._refuse(408, f"Request timeout: the request headers did not arrive within {seconds} seconds.")

    def _refuse(self, status: int, message: str) -> None:
        """Answer `status` with OpenAI-shaped error JSON (no dialect is known before the
        headers are), and close the connection."""
        self._refusal = (status, message)
        self._cancel_header_timer()
        if self.transport.is_closing():
            return
        client = f"{self.client[0]}:{self.client[1]}" if self.client else None
        fields = {
            "client": client,
            "status": status,
            "header_bytes": self._header_bytes + self._unparsed_bytes,
        }
        log.info("refused before routing: %s", message, extra={"fields": fields})
        error = {"message": message, "type": "invalid_request_error", "param": None, "code": None}
        body = json.dumps({"error": error}).encode()
        head = [STATUS_LINE[status]]
        for name, value in [*self.server_state.default_headers, *SECURITY_HEADERS]:
            head += [name, b": ", value, b"\r\n"]
        head += [
            b"content-type: application/json\r\n",
            b"content-length: " + str(len(body)).encode() + b"\r\n",
            b"connection: close\r\n\r\n",
        ]
        self.transport.write(b"".join(head) + body)
        self.transport.close()


class FileDockHttpProtocol(GracefulEndMixin, ZeroCopySendMixin, LimitedHttpToolsProtocol):
    """The HTTP protocol `filedock serve` runs: httptools with the limits above, request bodies
    passed to the app as read (`app.server.passthrough`), the zero-copy send extension
    (`app.server.zerocopy`) that downloads use when it is offered, and the clean end of requests
    still running when the shutdown grace runs out (`app.server.shutdown`)."""


class FileDockProtocol(LargeReads):
    """What uvicorn makes for each connection: `FileDockHttpProtocol`, read 1 MiB at a time."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(FileDockHttpProtocol(*args, **kwargs))
