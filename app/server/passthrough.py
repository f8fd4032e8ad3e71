"""Request bodies with a Content-Length reach the app as the socket read them, not through
httptools.

httptools hands each body chunk to `on_body` as a new bytes object copied out of its input, and
scans every byte on the way: an upload paid one copy of each byte more than the read itself
(about a seventh of a worker's CPU on a 256 MiB upload). Once a request's headers are parsed and
its Content-Length says how many bytes follow, this mixin hands the reads that fall inside that
body to `on_body` as they are, without the parser; when the body is complete it ends the message
itself (`on_message_complete`, as httptools would) and gives the connection a fresh parser for
the next request, since the old one still waits for the body it never saw. A read that holds the
end of the body and the start of a pipelined request is split there; only the part after the
body goes to the parser. Chunked bodies (no Content-Length) stay with httptools, which decodes
them.

Compose it below the limits: `class Limited(BodyPassThroughMixin, HttpToolsProtocol)`, so a
refused connection ignores its input before this sees it.
"""

import asyncio
import contextlib
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import RequestResponseCycle


class BodyPassThroughMixin:
    parser: Any
    headers: list[tuple[bytes, bytes]]
    cycle: RequestResponseCycle
    transport: asyncio.Transport
    _unset_keepalive_if_required: Any
    _body_left = 0  # bytes of the current request's body not yet handed to `on_body`

    def on_message_begin(self) -> None:
        self._body_left = 0
        super().on_message_begin()  # type: ignore[misc]

    def on_headers_complete(self) -> None:
        super().on_headers_complete()  # type: ignore[misc]
        if not self.parser.should_upgrade():  # an upgrade's bytes are not a body
            self._body_left = _declared_length(self.headers)

    def on_body(self, body: bytes) -> None:
        self._body_left -= len(body)
        super().on_body(body)  # type: ignore[misc]

    def on_message_complete(self) -> None:
        self._body_left = 0
        super().on_message_complete()  # type: ignore[misc]

    def data_received(self, data: bytes) -> None:
        if self._body_left <= 0:
            super().data_received(data)  # type: ignore[misc]
            return
        self._unset_keepalive_if_required()  # as uvicorn does on every read
        body = data if len(data) <= self._body_left else data[: self._body_left]
        self.on_body(body)
        if self._body_left > 0:
            return
        self.parser = _new_parser(self)
        self.on_message_complete()
        if len(body) < len(data) and not self.transport.is_closing():
            super().data_received(data[len(body) :])  # type: ignore[misc]


def _declared_length(headers: list[tuple[bytes, bytes]]) -> int:
    """The body's Content-Length, or 0 when it has none (chunked, or no body) to pass through.
    httptools has already refused a malformed, duplicated or conflicting one."""
    length = 0
    for name, value in headers:
        if name == b"transfer-encoding":
            return 0
        if name == b"content-length":
            length = int(value)
    return length


def _new_parser(protocol: object) -> Any:
    """A parser as uvicorn makes one for a new connection."""
    parser = httptools.HttpRequestParser(protocol)
    with contextlib.suppress(AttributeError):  # an httptools without them, as uvicorn allows
        parser.set_dangerous_leniencies(lenient_data_after_close=True)
    return parser
