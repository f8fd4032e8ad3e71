"""A pull-style reader of `multipart/form-data` straight off the request stream.

Starlette's `request.form()` spools each file to a temporary file before the route runs; we
want bytes to flow from the socket to the blob store in one pass, in bounded memory. The
parsing itself is python-multipart's push parser; this module turns its callbacks into
`async for part in form.parts()` and `async for chunk in form.chunks()`.
"""

from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from app.core.errors import InvalidRequest, RequestTooLarge, UnsupportedMediaType
from app.core.files import FileService
from app.http.bodies import discard_body
from app.http.headers import parse_disposition_params

MAX_PARTS = 32  # the default of FILEDOCK_MAX_FORM_PARTS
MAX_FIELD_BYTES = 64 * 1024
MAX_PART_HEADER_BYTES = 16 * 1024
# Room for the multipart framing and text fields around the largest accepted file.
FORM_OVERHEAD_BYTES = 1024 * 1024


class MalformedForm(InvalidRequest):
    def __init__(self, detail: str) -> None:
        super().__init__(f"Invalid multipart/form-data request body: {detail}")


@dataclass(frozen=True)
class Part:
    name: str
    filename: str | None  # None when the part has no filename parameter at all
    content_type: str | None


def boundary_of(content_type: str | None) -> bytes:
    """The boundary of a multipart/form-data Content-Type, or a 415/400 saying what is wrong."""
    media_type, params = parse_options_header(content_type or "")
    if media_type != b"multipart/form-data":
        raise UnsupportedMediaType(
            f"Expected a multipart/form-data request body, got Content-Type {(content_type or 'none')!r}."
        )
    boundary = params.get(b"boundary")
    if not boundary:
        raise MalformedForm("the Content-Type header has no boundary parameter.")
    return boundary


def declares_more_than(content_length: str | None, max_file_bytes: int) -> bool:
    """True when a declared body cannot hold a file of at most `max_file_bytes`: refuse it unread."""
    if not content_length or not (content_length.isascii() and content_length.isdigit()):
        return False
    return int(content_length) > max_file_bytes + FORM_OVERHEAD_BYTES


async def refuse_form_over_quota(content_length: str | None, files: FileService) -> None:
    """Before the body is read: refuse a form whose file cannot fit the project's quota. The
    file has at least the declared Content-Length less the room allowed for framing and text
    fields; a smaller form is left to the check that records the file."""
    if not content_length or not (content_length.isascii() and content_length.isdigit()):
        return
    least_file_bytes = int(content_length) - FORM_OVERHEAD_BYTES
    if least_file_bytes > 0:
        await files.check_room(least_file_bytes, body_unread=True)


def refuse_oversized_form(content_length: str | None, max_file_bytes: int, refusal: str) -> None:
    """`RequestTooLarge` with `refusal` when the declared body cannot hold an acceptable file."""
    if declares_more_than(content_length, max_file_bytes):
        raise RequestTooLarge(refusal)


async def read_form(
    form: "FormReader",
    receive_file: Callable[[Part, dict[str, str]], Awaitable[None]],
    *,
    file_field: str = "file",
    second_file: InvalidRequest,
) -> tuple[dict[str, str], bool]:
    """The text fields, and whether a part named `file_field` came (`receive_file` took its
    bytes, seeing the fields that came before it). A second such part raises `second_file`."""
    fields: dict[str, str] = {}
    received = False
    async with aclosing(form.parts()) as parts:
        async for part in parts:
            if part.name != file_field:
                fields[part.name] = await form.read_text(part.name)
            elif received:
                raise second_file
            else:
                await receive_file(part, fields)
                received = True
    return fields, received


class FormReader:
    def __init__(self, body: AsyncIterator[bytes], boundary: bytes, *, max_parts: int = MAX_PARTS) -> None:
        self._body = body
        self._max_parts = max_parts
        self._events: deque[tuple[str, Any]] = deque()
        self._input_done = False
        self._in_part = False
        self._header_field = bytearray()
        self._header_value = bytearray()
        try:
            self._parser = MultipartParser(boundary, self._callbacks(), max_header_size=MAX_PART_HEADER_BYTES)
        except ValueError as exc:
            raise MalformedForm(str(exc)) from None

    def _callbacks(self) -> Any:
        events = self._events

        def on_header_field(data: bytes, start: int, end: int) -> None:
            self._header_field += data[start:end]

        def on_header_value(data: bytes, start: int, end: int) -> None:
            self._header_value += data[start:end]

        def on_header_end() -> None:
            events.append(("header", (bytes(self._header_field), bytes(self._header_value))))
            self._header_field.clear()
            self._header_value.clear()

        return {
            "on_part_begin": lambda: events.append(("begin", None)),
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": lambda: events.append(("headers_done", None)),
            "on_part_data": lambda data, start, end: events.append(("data", data[start:end])),
            "on_part_end": lambda: events.append(("end", None)),
            "on_end": lambda: events.append(("done", None)),
        }

    async def _next_event(self) -> tuple[str, Any]:
        while not self._events:
            if self._input_done:
                raise MalformedForm("the body ended before the closing boundary.")
            try:
                chunk = await anext(self._body)
            except StopAsyncIteration:
                self._input_done = True
                self._feed(None)
                continue
            if chunk:
                self._feed(chunk)
        return self._events.popleft()

    def _feed(self, chunk: bytes | None) -> None:
        try:
            if chunk is None:
                self._parser.finalize()
            else:
                self._parser.write(chunk)
        except MultipartParseError as exc:
            raise MalformedForm(str(exc)) from None

    async def parts(self) -> AsyncGenerator[Part, None]:
        """Each part in order; unread data of a part is skipped when the next is requested."""
        count = 0
        while True:
            kind, _ = await self._next_event()
            if kind == "done":
                await self._read_to_the_end()
                return
            if kind != "begin":
                continue
            count += 1
            if count > self._max_parts:
                raise MalformedForm(f"more than {self._max_parts} parts.")
            part = await self._read_headers()
            self._in_part = True
            yield part
            async for _ in self.chunks():
                pass  # the caller did not want this part's data

    async def _read_to_the_end(self) -> None:
        """Read (and drop) what follows the closing boundary, up to FORM_OVERHEAD_BYTES.

        A request counts only once its whole body has arrived: a client that declared more
        than it sent and hung up after the closing boundary must store nothing, so its
        disconnect has to surface here, before the caller commits the file.
        """
        if not self._input_done and not await discard_body(self._body, FORM_OVERHEAD_BYTES):
            raise MalformedForm(f"more than {FORM_OVERHEAD_BYTES} bytes after the closing boundary.")
        self._input_done = True

    async def _read_headers(self) -> Part:
        headers: dict[str, str] = {}
        while (event := await self._next_event())[0] != "headers_done":
            if event[0] == "header":
                field, value = event[1]
                headers[field.decode("latin-1").lower()] = value.decode("utf-8", errors="replace")
        disposition = headers.get("content-disposition")
        if disposition is None:
            raise MalformedForm("a part has no Content-Disposition header.")
        params = parse_disposition_params(disposition)
        return Part(
            name=params.get("name", ""),
            filename=params.get("filename"),
            content_type=headers.get("content-type"),
        )

    async def chunks(self) -> AsyncIterator[bytes]:
        """The data of the current part, chunk by chunk, as it arrives."""
        while self._in_part:
            kind, data = await self._next_event()
            if kind == "data":
                yield data
            elif kind == "end":
                self._in_part = False

    async def read_text(self, name: str) -> str:
        """A text field's value, refused above `MAX_FIELD_BYTES`."""
        value = bytearray()
        async for chunk in self.chunks():
            value += chunk
            if len(value) > MAX_FIELD_BYTES:
                raise InvalidRequest(
                    f"Form field '{name}' is longer than {MAX_FIELD_BYTES} bytes.", param=name
                )
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidRequest(f"Form field '{name}' is not valid UTF-8.", param=name) from None

    async def discard_rest(self, max_bytes: int) -> None:
        """Read and drop what is left of the body, up to `max_bytes`; stored nowhere."""
        if not self._input_done:
            self._input_done = await discard_body(self._body, max_bytes)
