"""One access line per request, and the request metrics, fed by pure ASGI middleware on the
outside of the app, which also gives each request its id and common headers (as
`RequestIdMiddleware` does when the access log and the metrics are off): one pass per response
for both.

The line names the request (its id, and the client's `X-Client-Request-Id`), the client's
address, method, path (never the query string, which may hold a Gemini `key=`), the dialect,
the status, the bytes in and out, the duration and the caller's project; never a key. A 4xx or
5xx says why: the error handlers note the domain error in the request's `Exchange`
(`note_error`). A client that hangs up before its body is complete gets a line saying how
many bytes arrived.

A request pays only for counting its bytes and keeping its `Exchange`: the finished exchanges
are handed to the observers (the metrics, the access lines) in batches (`Exchanges`), at most a
tenth of a second later, tallied and formatted in one loop, each line one f-string.
"""

import asyncio
import atexit
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.http.middleware import REQUEST_ID, new_request_id, with_common_headers
from app.logs import LogFormat, json_line, text_time, write_lines

log = logging.getLogger("filedock.access")
EXCHANGE = "filedock.exchange"  # the scope key of the request's Exchange
DIALECT = "filedock.dialect"  # the scope key where the dispatcher names the request's dialect
CALLER = "filedock.caller"  # where `app.http.credentials.identify` keeps the caller
ROUTE = "filedock.route"  # a route template set by code that answers before routing
_MAX_CLIENT_ID = 128
BATCH_SECONDS = 0.1  # how long a finished exchange may wait for its observers
BATCH_SIZE = 512  # and how many may wait


@dataclass(slots=True)
class Exchange:
    """What one request and its answer came to, filled in as they pass."""

    method: str
    path: str
    started: float = field(default_factory=time.perf_counter)
    declared_bytes: int | None = None
    client_request_id: bytes | None = None
    bytes_in: int = 0
    bytes_out: int = 0
    status: int = 0
    body_complete: bool = False
    disconnected: bool = False
    error: str | None = None
    error_code: str | None = None
    storage_error: bool = False
    dialect: str = "-"
    route: str = "-"
    project: str | None = None
    request_id: str | None = None
    client: tuple[str, int] | None = None
    duration: float = 0.0
    has_body: bool = False  # an upload: a POST or PUT with a body (declared, or chunked)
    hung_up: bool = False  # the client left before its body was complete


def note_error(scope: Scope, error: BaseException, *, storage: bool = False) -> None:
    """Say why the request failed, for its access line and the metrics."""
    exchange: Exchange | None = scope.get(EXCHANGE)
    if exchange is not None:
        exchange.error = type(error).__name__
        exchange.error_code = getattr(error, "code", None)
        exchange.storage_error = exchange.storage_error or storage


class Observer(Protocol):
    """Hears of each request with a body (an upload) as it starts, and of every answered
    request in batches."""

    def started(self, exchange: Exchange) -> None: ...

    def answered(self, exchanges: Sequence[Exchange]) -> None: ...


class Exchanges:
    """The finished exchanges of this process, handed to the observers in batches: `BATCH_SIZE`
    of them, or `BATCH_SECONDS` after the first one waiting, whenever `drain` is called (before
    a scrape, at shutdown) and at exit."""

    def __init__(self, observers: Sequence[Observer]) -> None:
        self.observers = tuple(observers)
        self._waiting: list[Exchange] = []
        self._timer: asyncio.TimerHandle | None = None
        atexit.register(self.drain)

    def started(self, exchange: Exchange) -> None:
        for observer in self.observers:
            observer.started(exchange)

    def finished(self, exchange: Exchange) -> None:
        self._waiting.append(exchange)
        if len(self._waiting) >= BATCH_SIZE:
            self.drain()
        elif self._timer is None:
            try:
                self._timer = asyncio.get_running_loop().call_later(BATCH_SECONDS, self.drain)
            except RuntimeError:  # no event loop here: at once
                self.drain()

    def drain(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._waiting = self._waiting, []
        if batch:
            for observer in self.observers:
                observer.answered(batch)


class AccessLines:
    """Writes the access lines, when `filedock.access` is enabled at info, in the log format:
    the lines `logging` would write, straight to stderr, each batch in as few writes as whole
    lines allow (`write_lines`)."""

    def __init__(self, log_format: LogFormat) -> None:
        self.log_format = log_format

    def started(self, exchange: Exchange) -> None:
        pass

    def answered(self, exchanges: Sequence[Exchange]) -> None:
        if not log.isEnabledFor(logging.INFO):
            return
        wall = time.time() - time.perf_counter()  # plus a perf_counter reading: the wall-clock time
        if self.log_format == "json":
            write_lines([_json_line(e, wall + e.started + e.duration) for e in exchanges])
        else:
            write_lines([_text_line(e, wall + e.started + e.duration) for e in exchanges])


def _json_line(exchange: Exchange, ended_at: float) -> str:
    fields: dict[str, Any] = {
        "request_id": exchange.request_id,
        "client_request_id": _client_request_id(exchange.client_request_id),
        "client": None if exchange.client is None else f"{exchange.client[0]}:{exchange.client[1]}",
        "method": exchange.method,
        "path": exchange.path,
        "dialect": exchange.dialect,
        "status": exchange.status,
        "bytes_in": exchange.bytes_in,
        "bytes_out": exchange.bytes_out,
        "duration_ms": round(exchange.duration * 1000, 3),
        "project": exchange.project,
    }
    if exchange.error is not None:
        fields.update(error=exchange.error, error_code=exchange.error_code)
    if exchange.hung_up:
        fields["client_hung_up"] = True
    message = f"{exchange.method} {exchange.path} {exchange.status}{_hung_up(exchange)}"
    return json_line(log.name, "info", ended_at, message, fields)


def _text_line(e: Exchange, ended_at: float) -> str:
    """The line `TextFormatter` would write (`text_time`, level, logger), whose message is like
    nginx's combined log, then each other field once: one f-string, as this is most of what the
    access log costs a request."""
    client = "-" if e.client is None else f"{e.client[0]}:{e.client[1]}"
    project = "-" if e.project is None else _shown(e.project)
    path = e.path if e.path.isprintable() and '"' not in e.path and "\\" not in e.path else _escaped(e.path)
    client_request_id = (
        "-" if e.client_request_id is None else _shown(_client_request_id(e.client_request_id))
    )
    line = (
        f'{text_time(ended_at)} INFO filedock.access: {client} - {project} "{e.method} {path}" {e.status}'
        f" {e.bytes_out} bytes_in={e.bytes_in} duration_ms={e.duration * 1000:.3f} dialect={e.dialect}"
        f" request_id={e.request_id or '-'} client_request_id={client_request_id}"
    )
    if e.error is not None:
        line += f" error={e.error} error_code={e.error_code or '-'}"
    if e.hung_up:
        line += f" client_hung_up=true{_hung_up(e)}"
    return line


def _hung_up(exchange: Exchange) -> str:
    """What the line says of a client that left before its body was complete."""
    if not exchange.hung_up:
        return ""
    declared = "" if exchange.declared_bytes is None else f" of {exchange.declared_bytes}"
    return f": the client hung up after sending {exchange.bytes_in}{declared} bytes"


class AccessLog:
    """Gives the request its id and the common headers (`with_common_headers`), counts its
    status and the bytes of its answer (and of its body, for a request with one), and hands
    its `Exchange` to `exchanges`."""

    def __init__(self, app: ASGIApp, exchanges: Exchanges) -> None:
        self.app = app
        self.exchanges = exchanges

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = scope[REQUEST_ID] = new_request_id()
        exchange = scope[EXCHANGE] = Exchange(scope["method"], scope["path"], request_id=request_id)
        _read_headers(scope, exchange)
        declared = exchange.declared_bytes
        exchange.has_body = exchange.method in ("POST", "PUT") and (declared is None or declared > 0)
        if exchange.has_body:
            self.exchanges.started(exchange)
            receive = _counting_receive(receive, exchange)
        else:
            exchange.body_complete = True

        async def counting_send(message: Message) -> None:
            kind = message["type"]
            if kind == "http.response.body":
                exchange.bytes_out += len(message.get("body", b""))
            elif kind == "http.response.start":
                exchange.status = message["status"]
                message["headers"] = with_common_headers(message.get("headers", []), request_id)
            elif kind == "http.response.zerocopysend":
                exchange.bytes_out += int(message.get("count") or 0)
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            _finish(scope, exchange)
            self.exchanges.finished(exchange)


def _counting_receive(receive: Receive, exchange: Exchange) -> Receive:
    async def counting_receive() -> Message:
        message = await receive()
        if message["type"] == "http.request":
            exchange.bytes_in += len(message.get("body", b""))
            exchange.body_complete = not message.get("more_body", False)
        elif message["type"] == "http.disconnect":
            exchange.disconnected = True
        return message

    return counting_receive


def _finish(scope: Scope, exchange: Exchange) -> None:
    exchange.duration = time.perf_counter() - exchange.started
    exchange.dialect = scope.get(DIALECT) or "-"
    exchange.route = scope.get(ROUTE) or _route_template(scope)
    caller = scope.get(CALLER)
    if caller is not None:
        exchange.project = caller.project
    exchange.client = scope.get("client")
    exchange.hung_up = exchange.disconnected and not exchange.body_complete
    if exchange.status == 0:
        exchange.status = 500  # the app raised before answering; the server answers 500


def _read_headers(scope: Scope, exchange: Exchange) -> None:
    """The two request headers the exchange keeps, in one pass."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            exchange.declared_bytes = int(value) if value.isdigit() else None
        elif name == b"x-client-request-id" and exchange.client_request_id is None:
            exchange.client_request_id = bytes(value)


def _route_template(scope: Scope) -> str:
    """The route that answered, as a template (`/v1/files/{file_id}`), for bounded metric labels.
    A route included under a prefix or mounted knows only its own part of the path; the prefix
    is the part of the path before what the route's pattern matches. (The hottest requests, the
    fast reads, name their template in the scope as `ROUTE` and skip this.)"""
    route = scope.get("route")
    pattern, template = getattr(route, "path_regex", None), getattr(route, "path_format", None)
    if pattern is None or not template:
        return "unmatched"
    path = str(scope.get("path", ""))
    for index, char in enumerate(path):
        if char == "/" and pattern.fullmatch(path[index:]):
            return path[:index] + str(template)
    return str(template)


def _escaped(text: str) -> str:
    """`text` as is, or with quotes, backslashes and control characters escaped (a path is
    percent-decoded and may hold them): one line, and the request's quotes stay unambiguous."""
    if text.isprintable() and '"' not in text and "\\" not in text:
        return text
    return json.dumps(text, ensure_ascii=False)[1:-1]


def _shown(value: str | None) -> str:
    if not value:
        return "-"
    plain = value.isprintable() and " " not in value and '"' not in value
    return value if plain else json.dumps(value)


def _client_request_id(value: bytes | None) -> str | None:
    if value is None:
        return None
    return value[:_MAX_CLIENT_ID].decode("latin-1").encode("ascii", "backslashreplace").decode()
