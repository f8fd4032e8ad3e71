"""Request bodies with fewer copies and fewer wake-ups: a uvicorn httptools protocol mixin.

uvicorn appends every body piece httptools hands over to a bytearray (a copy), copies that into
a new `bytes` for each `http.request` message (another copy), and pauses reading once 64 KiB
wait, so a large upload costs a pause, a resume and a task switch per socket read. Here the
pieces are kept as they come, a message is the piece itself when it is the only one waiting
(no copy) or their join, and reading pauses only at `BODY_HIGH_WATER` bytes.

Compose it like `class Protocol(BatchedBodyMixin, SendfileMixin, LimitsMixin, HttpToolsProtocol)`.
"""

from typing import Any

from uvicorn._types import ASGI3Application, ASGIReceiveEvent
from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

BODY_HIGH_WATER = 1024 * 1024


class _BatchedCycle(RequestResponseCycle):
    """uvicorn's cycle whose body is a list of pieces; `receive` mirrors uvicorn's own."""

    pieces: list[bytes]
    waiting: int

    async def receive(self) -> ASGIReceiveEvent:
        if self.waiting_for_100_continue and not self.transport.is_closing():
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.waiting_for_100_continue = False
        if not self.disconnected and not self.response_complete:
            self.flow.resume_reading()
            await self.message_event.wait()
            self.message_event.clear()
        if self.disconnected or self.response_complete:
            return {"type": "http.disconnect"}
        pieces, self.pieces, self.waiting = self.pieces, [], 0
        body = pieces[0] if len(pieces) == 1 else b"".join(pieces)
        return {"type": "http.request", "body": body, "more_body": self.more_body}


class BatchedBodyMixin:
    cycle: Any
    flow: Any
    parser: Any

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: ASGI3Application) -> None:
        if type(cycle) is RequestResponseCycle and not cycle.body:  # nothing buffered the old way
            cycle.__class__ = _BatchedCycle
            cycle.pieces, cycle.waiting = [], 0  # type: ignore[attr-defined]
        super()._start_asgi_task(cycle, app)  # type: ignore[misc]

    def on_body(self, body: bytes) -> None:
        cycle = self.cycle
        if not isinstance(cycle, _BatchedCycle):
            return super().on_body(body)  # type: ignore[misc,no-any-return]
        if (self.parser.should_upgrade() and self._should_upgrade()) or cycle.response_complete:  # type: ignore[attr-defined]
            return None
        cycle.pieces.append(body)
        cycle.waiting += len(body)
        if cycle.waiting > BODY_HIGH_WATER:
            self.flow.pause_reading()
        cycle.message_event.set()
        return None
