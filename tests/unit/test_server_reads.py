"""`app.server.reads`: uvloop reads a connection into the front's 1 MiB buffer, and the wrapped
protocol gets every byte, in order, as bytes, and every other event."""

import asyncio
import os
import socket
import threading

import uvloop
from uvicorn.importer import import_from_string

from app.server.protocol import FileDockHttpProtocol, FileDockProtocol
from app.server.reads import READ_BUFFER_BYTES, LargeReads
from app.server.run import HTTP_PROTOCOL


class Recorder(asyncio.Protocol):
    def __init__(self) -> None:
        self.events: list[str] = []
        self.chunks: list[bytes] = []
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.events.append("made")

    def data_received(self, data: bytes) -> None:
        assert type(data) is bytes  # a copy: the buffer is read into again
        self.chunks.append(data)

    def eof_received(self) -> None:
        self.events.append("eof")

    def connection_lost(self, exc: Exception | None) -> None:
        self.events.append("lost")
        self.closed.set_result(None)


class CountingReads(LargeReads):
    buffers_given = 0

    def get_buffer(self, sizehint: int) -> memoryview:
        CountingReads.buffers_given += 1
        return super().get_buffer(sizehint)


def send_and_close(port: int, payload: bytes) -> None:
    with socket.create_connection(("127.0.0.1", port)) as client:
        client.sendall(payload)


async def serve_once(payload: bytes) -> Recorder:
    recorders: list[Recorder] = []

    def protocol() -> CountingReads:
        recorders.append(Recorder())
        return CountingReads(recorders[-1])

    server = await asyncio.get_running_loop().create_server(protocol, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    sender = threading.Thread(target=send_and_close, args=(port, payload))
    sender.start()
    while not recorders:
        await asyncio.sleep(0.01)
    await asyncio.wait_for(recorders[0].closed, 10)
    sender.join()
    server.close()
    return recorders[0]


def test_uvloop_reads_through_the_front_and_every_byte_arrives_in_order() -> None:
    payload = os.urandom(3 * READ_BUFFER_BYTES + 12345)  # random: a reordered or repeated read shows
    CountingReads.buffers_given = 0
    recorder = uvloop.run(serve_once(payload))
    assert b"".join(recorder.chunks) == payload
    assert recorder.events == ["made", "eof", "lost"]
    # uvloop ignores `get_buffer` on an asyncio.Protocol; on the front it reads into it.
    assert CountingReads.buffers_given >= len(recorder.chunks) > 0


def test_the_server_runs_the_buffered_front_for_the_http_protocol() -> None:
    assert import_from_string(HTTP_PROTOCOL) is FileDockProtocol
    assert issubclass(FileDockProtocol, LargeReads)
    assert not issubclass(FileDockProtocol, asyncio.Protocol)  # uvloop's condition for buffered reads
    assert issubclass(FileDockHttpProtocol, asyncio.Protocol)  # hence the front


def test_the_front_forwards_every_event_a_transport_sends() -> None:
    events = {
        name for name in [*vars(asyncio.BaseProtocol), *vars(asyncio.BufferedProtocol)] if name[0] != "_"
    }
    assert events <= set(vars(LargeReads))
