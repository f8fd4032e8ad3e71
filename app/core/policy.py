"""`FilePolicy`: what a file must be to be stored, as a dialect states it for one request.

Each dialect builds the policy from its own rules (OpenAI's purposes, Anthropic's and Gemini's
size limits) and hands it to `FileService`, which applies it the same way for everyone. The
name and media-type rules below hold for every dialect: they are what the database can store.
"""

import mimetypes
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from app.core.errors import FileTooLarge, InvalidRequest


class ContentCheck(Protocol):
    """Checks a file's bytes as they stream in; raises `InvalidRequest` at the first fault."""

    def feed(self, chunk: bytes) -> None: ...

    def finish(self) -> None: ...


@dataclass(frozen=True)
class FilePolicy:
    """`purpose` is None while it is not known yet (a form that sends the file first) and for
    bytes that are not a file of their own (an Upload's Part)."""

    purpose: str | None
    max_bytes: int
    content_check: Callable[[], ContentCheck] | None = None
    default_expiry_seconds: int | None = None

    def too_large(self) -> FileTooLarge:
        scope = f"for purpose '{self.purpose}'" if self.purpose else "per file"
        return FileTooLarge(
            f"File is too large: over {self.max_bytes} bytes. Maximum {scope} is {self.max_bytes} bytes."
        )

    def new_check(self) -> ContentCheck | None:
        return self.content_check() if self.content_check else None


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def display_filename(raw: str | None, *, default: str = "upload") -> str:
    """The name we store and show: the last path component, without control characters."""
    if raw is None:
        return default
    name = _CONTROL.sub("", re.split(r"[/\\]", raw)[-1]).strip()
    return default if name in ("", ".", "..") else name


def guess_mime_type(filename: str) -> str:
    mime, _ = mimetypes.guess_type(filename, strict=False)
    return mime or "application/octet-stream"


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
