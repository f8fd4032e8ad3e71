"""Reads of up to 1 MiB from a connection's socket, not uvloop's 250 KB.

uvloop reads a plain `asyncio.Protocol`'s input into a buffer of its own of 256,000 bytes and
hands each read on as a new bytes object. An upload of 256 MiB then costs a worker's event loop
over a thousand rounds of the whole chain (the HTTP protocol, the ASGI receive, python-multipart,
the blob writer), and that loop is what bounds an upload. A `BufferedProtocol` gives the
transport the buffer to read into instead, so one read can take all the socket holds, up to this
module's 1 MiB: the loop thread's CPU per 256 MiB upload fell by about a third
(docs/performance.md, "Socket reads of up to 1 MiB").

uvloop reads into a protocol's buffer only when the protocol is not an `asyncio.Protocol`, and
uvicorn's HTTP protocol is one, so `LargeReads` is a front that the transport talks to: it is
the buffered protocol, and it forwards everything else to the HTTP protocol it wraps. Each read
is copied out into a bytes object before anything else runs (as uvloop did), so one buffer
serves every connection of the thread's event loop.
"""

import asyncio
import threading

READ_BUFFER_BYTES = 1024 * 1024  # larger reads made larger blob writes, slower on this VM's disk


class _ThreadBuffer(threading.local):
    view: memoryview | None = None


_buffer = _ThreadBuffer()


def _read_buffer() -> memoryview:
    view = _buffer.view
    if view is None:
        view = _buffer.view = memoryview(bytearray(READ_BUFFER_BYTES))
    return view


class LargeReads(asyncio.BufferedProtocol):
    """The transport's protocol: reads go into a 1 MiB buffer, then to `protocol.data_received`
    as bytes; every other event goes to `protocol` as it came."""

    def __init__(self, protocol: asyncio.Protocol) -> None:
        self.protocol = protocol

    def get_buffer(self, sizehint: int) -> memoryview:
        return _read_buffer()

    def buffer_updated(self, nbytes: int) -> None:
        self.protocol.data_received(_read_buffer()[:nbytes].tobytes())

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.protocol.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.protocol.connection_lost(exc)

    def eof_received(self) -> bool | None:
        return self.protocol.eof_received()

    def pause_writing(self) -> None:
        self.protocol.pause_writing()

    def resume_writing(self) -> None:
        self.protocol.resume_writing()
