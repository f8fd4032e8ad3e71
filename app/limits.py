"""Request-level limits against hostile or broken clients, shared by every dialect.

The limits on the HTTP framing itself (header size, slow headers) live in `app.http_protocol`,
below the ASGI app; these are the ones that need the app: a body that stalls, a filename too
long to store.
"""

import asyncio
import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import InvalidRequest, RequestTimeout


class BodyIdleTimeout:
    """Raises `RequestTimeout` (408) from `receive` when a body sends no byte for `idle_seconds`.

    Every body read in the app (`request.stream()`, the multipart reader, Gemini chunks) goes
    through ASGI `receive`, so this is the one place a stalled upload is noticed. The exception
    surfaces in the route as it reads, so each upload path's usual cleanup (the temporary blob
    is discarded on any exception) runs, and the dialect renders the 408 in its own error JSON.
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


def check_filename(name: str, max_bytes: int, *, param: str = "file", label: str = "Filename") -> str:
    """`name` if it can be stored: at most `max_bytes` of UTF-8 (the database column is 1024
    wide), no NUL and no lone surrogate from a JSON escape (neither fits a PostgreSQL text
    column, nor the surrogate a SQLite one); else a 400."""
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidRequest(f"{label} is not valid Unicode.", param=param) from None
    if "\x00" in name:
        raise InvalidRequest(f"{label} must not contain NUL characters.", param=param)
    if size > max_bytes:
        raise InvalidRequest(
            f"{label} is too long: {size} bytes in UTF-8, and at most {max_bytes} are allowed.",
            param=param,
            code="filename_too_long",
        )
    return name


MAX_MIME_TYPE_CHARS = 255  # the width of the mime_type column


def check_mime_type(value: str, *, param: str = "mime_type") -> str:
    """`value` if it fits the mime_type column and has no control character, else a 400."""
    if len(value) > MAX_MIME_TYPE_CHARS or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise InvalidRequest(
            f"Invalid '{param}': at most {MAX_MIME_TYPE_CHARS} printable characters are allowed.",
            param=param,
        )
    return value


def loads_json(raw: bytes | bytearray) -> Any:
    """`json.loads` (its `ValueError` for bad JSON), and a 400 for a lone surrogate escape
    ("\\ud800"): such a string can be neither stored nor echoed back in an error as UTF-8."""
    value = json.loads(raw)
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidRequest("The JSON body is not valid Unicode: it has a lone surrogate escape.") from None
    return value
