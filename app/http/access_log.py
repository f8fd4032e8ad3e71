"""One access line per request, written by pure ASGI middleware just inside `RequestIdMiddleware`.

The line names the request (its id, and the client's `X-Client-Request-Id`), the client's
address, method, path (never the query string, which may hold a Gemini `key=`), the dialect,
the status, the bytes in and out, the duration and the caller's project; never a key. A 4xx or
5xx says why: the error handlers note the domain error in the request's `Exchange`
(`note_error`). A client that hangs up before its body is complete gets a line saying how
many bytes arrived. Observers (the metrics) see every finished `Exchange`.
"""

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.http.middleware import REQUEST_ID

log = logging.getLogger("filedock.access")
EXCHANGE = "filedock.exchange"  # the scope key of the request's Exchange
DIALECT = "filedock.dialect"  # the scope key where the dispatcher names the request's dialect
CALLER = "filedock.caller"  # where `app.http.credentials.identify` keeps the caller
ROUTE = "filedock.route"  # a route template set by code that answers before routing
_MAX_CLIENT_ID = 128


@dataclass
class Exchange:
    """What one request and its answer came to, filled in as they pass."""

    method: str
    path: str
    started: float = field(default_factory=time.perf_counter)
    declared_bytes: int | None = None
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
    duration: float = 0.0

    @property
    def has_body(self) -> bool:
        """An upload: a POST or PUT with a body (declared, or chunked)."""
        return self.method in ("POST", "PUT") and (self.declared_bytes is None or self.declared_bytes > 0)

    @property
    def hung_up(self) -> bool:
        """The client left before its body was complete."""
        return self.disconnected and not self.body_complete


def note_error(scope: Scope, error: BaseException, *, storage: bool = False) -> None:
    """Say why the request failed, for its access line and the metrics."""
    exchange: Exchange | None = scope.get(EXCHANGE)
    if exchange is not None:
        exchange.error = type(error).__name__
        exchange.error_code = getattr(error, "code", None)
        exchange.storage_error = exchange.storage_error or storage


class Observer(Protocol):
    """Hears of each request as it starts and once it is answered (the metrics)."""

    def started(self, exchange: Exchange) -> None: ...

    def finished(self, exchange: Exchange) -> None: ...


class AccessLog:
    """Counts the bytes of a request and its answer, then writes its line (unless `lines` is off)
    and tells observers."""

    def __init__(self, app: ASGIApp, observers: Sequence[Observer] = (), *, lines: bool = True) -> None:
        self.app = app
        self.observers = tuple(observers)
        self.lines = lines

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        exchange = Exchange(scope["method"], scope["path"], declared_bytes=_content_length(scope))
        scope[EXCHANGE] = exchange
        exchange.body_complete = not exchange.has_body
        for observer in self.observers:
            observer.started(exchange)

        async def counting_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                exchange.bytes_in += len(message.get("body", b""))
                exchange.body_complete = not message.get("more_body", False)
            elif message["type"] == "http.disconnect":
                exchange.disconnected = True
            return message

        async def counting_send(message: Message) -> None:
            kind = message["type"]
            if kind == "http.response.body":
                exchange.bytes_out += len(message.get("body", b""))
            elif kind == "http.response.start":
                exchange.status = message["status"]
            elif kind == "http.response.zerocopysend":
                exchange.bytes_out += int(message.get("count") or 0)
            await send(message)

        try:
            await self.app(scope, counting_receive, counting_send)
        finally:
            self._finish(scope, exchange)

    def _finish(self, scope: Scope, exchange: Exchange) -> None:
        exchange.duration = time.perf_counter() - exchange.started
        exchange.dialect = scope.get(DIALECT) or "-"
        exchange.route = _route_template(scope)
        caller = scope.get(CALLER)
        exchange.project = None if caller is None else caller.project
        if exchange.status == 0:
            exchange.status = 500  # the app raised before answering; the server answers 500
        for observer in self.observers:
            observer.finished(exchange)
        if self.lines and log.isEnabledFor(logging.INFO):
            _write_line(scope, exchange)


def _write_line(scope: Scope, exchange: Exchange) -> None:
    """One record through the configured logging: `fields` for the JSON format, `text` (the
    whole message, each field once, like nginx's combined log) for the text format, made only
    if that format asks. Built with `makeRecord` and `handle`, which skip only `Logger.info`'s
    walk up the stack for the caller's file and line, never shown."""
    fields: dict[str, Any] = {
        "request_id": scope.get(REQUEST_ID),
        "client_request_id": _client_request_id(scope),
        "client": _client(scope),
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
    hung_up = ""
    if exchange.hung_up:
        declared = "" if exchange.declared_bytes is None else f" of {exchange.declared_bytes}"
        hung_up = f": the client hung up after sending {exchange.bytes_in}{declared} bytes"
        fields["client_hung_up"] = True
    message = f"{exchange.method} {exchange.path} {exchange.status}{hung_up}"
    extra = {"fields": fields, "text": _CombinedLine(fields, hung_up)}
    log.handle(log.makeRecord(log.name, logging.INFO, "", 0, message, (), None, extra=extra))


class _CombinedLine:
    """The text format's access line, written from the record's fields when it is formatted."""

    __slots__ = ("fields", "hung_up")

    def __init__(self, fields: dict[str, Any], hung_up: str) -> None:
        self.fields, self.hung_up = fields, hung_up

    def __str__(self) -> str:
        f = self.fields
        line = (
            f'{f["client"] or "-"} - {_shown(f["project"])} "{f["method"]} {_escaped(f["path"])}"'
            f" {f['status']} {f['bytes_out']} bytes_in={f['bytes_in']} duration_ms={f['duration_ms']}"
            f" dialect={f['dialect']} request_id={f['request_id'] or '-'}"
            f" client_request_id={_shown(f['client_request_id'])}"
        )
        if "error" in f:
            line += f" error={f['error']} error_code={f['error_code'] or '-'}"
        if self.hung_up:
            line += f" client_hung_up=true{self.hung_up}"
        return line


def _route_template(scope: Scope) -> str:
    """The route that answered, as a template (`/v1/files/{file_id}`), for bounded metric labels.
    A route included under a prefix or mounted knows only its own part of the path; the prefix
    is the part of the path before what the route's pattern matches. (The hottest requests, the
    fast reads, name their template in the scope and skip this.)"""
    template = scope.get(ROUTE)
    if template:
        return str(template)
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


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value)
    return None


def _content_length(scope: Scope) -> int | None:
    value = _header(scope, b"content-length")
    return int(value) if value is not None and value.isdigit() else None


def _client_request_id(scope: Scope) -> str | None:
    value = _header(scope, b"x-client-request-id")
    if value is None:
        return None
    return value[:_MAX_CLIENT_ID].decode("latin-1").encode("ascii", "backslashreplace").decode()


def _client(scope: Scope) -> str | None:
    client = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else None
