"""Request bodies every dialect reads: small JSON documents, and the rest of a refused body."""

import json
from collections.abc import AsyncIterator
from typing import Any

from app.core.errors import InvalidRequest


async def discard_body(body: AsyncIterator[bytes], max_bytes: int) -> bool:
    """Read and drop what is left of a body, up to `max_bytes`; True if it ended within that.

    A refusal is answered after the body is read, so the client reads our error rather than
    a reset connection, which the SDKs would retry.
    """
    dropped = 0
    async for chunk in body:
        dropped += len(chunk)
        if dropped > max_bytes:
            return False
    return True


async def read_capped(body: AsyncIterator[bytes], max_bytes: int, too_large: Exception) -> bytearray:
    """A whole small body, refused with `too_large` once it passes `max_bytes`."""
    raw = bytearray()
    async for chunk in body:
        raw += chunk
        if len(raw) > max_bytes:
            raise too_large
    return raw


MAX_JSON_DEPTH = 128  # arrays and objects inside each other; a batch request needs a dozen
MAX_JSON_NUMBER_CHARS = 100  # a number's text; Python refuses int text over 4300 digits itself


class NotJson(ValueError):
    """Why a client's text is not JSON FileDock reads: its syntax, nesting, a number or constant."""


def client_json(raw: str | bytes | bytearray) -> Any:
    """Parse JSON a client sent, or raise `NotJson` saying why not.

    Bounded so no document can raise anything else: nesting deeper than `MAX_JSON_DEPTH` (the
    parser's own recursion would end in `RecursionError`), numbers longer than
    `MAX_JSON_NUMBER_CHARS` (Python's int parsing raises a bare `ValueError` over 4300 digits,
    and an echo of one in an error message would be unreadable), and `NaN`/`Infinity`, which
    are not JSON. Duplicate keys keep the last value, as every mainstream parser does.
    """
    try:
        value = json.loads(raw, parse_int=_int, parse_float=_float, parse_constant=_constant)
    except RecursionError:
        raise NotJson(_too_deep()) from None
    except NotJson:
        raise
    except ValueError as exc:  # JSONDecodeError, or UnicodeDecodeError for bytes not in UTF-8
        raise NotJson(str(exc)) from None
    if _openings(raw) > MAX_JSON_DEPTH:  # with fewer, it cannot nest that deep: skip the walk
        _check_depth(value)
    return value


def parse_client_json(raw: str | bytes | bytearray, what: str, *, param: str | None = None) -> Any:
    """`client_json`, with a 400 naming `what` ("The request body", "'expires_after'") for text
    that is not JSON, and for a lone surrogate escape ("\\ud800"): such a string can be neither
    stored nor echoed back in an error as UTF-8."""
    try:
        value = client_json(raw)
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except NotJson as exc:
        raise InvalidRequest(f"{what} is not valid JSON: {exc}.", param=param) from None
    except UnicodeEncodeError:
        raise InvalidRequest(
            f"{what} is not valid Unicode: it has a lone surrogate escape.", param=param
        ) from None
    return value


def _int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_JSON_NUMBER_CHARS:
        raise NotJson(_too_long(text))
    return int(text)


def _float(text: str) -> float:
    if len(text.lstrip("-")) > MAX_JSON_NUMBER_CHARS:
        raise NotJson(_too_long(text))
    return float(text)


def _constant(text: str) -> Any:
    raise NotJson(f"{text} is not a JSON value")


def _too_long(text: str) -> str:
    return f"a number is {len(text)} characters long; at most {MAX_JSON_NUMBER_CHARS} are allowed"


def _too_deep() -> str:
    return f"arrays and objects are nested more than {MAX_JSON_DEPTH} levels deep"


def _openings(raw: str | bytes | bytearray) -> int:
    if isinstance(raw, str):
        return raw.count("[") + raw.count("{")
    return raw.count(b"[") + raw.count(b"{")


def _check_depth(value: Any) -> None:
    """Walk `value` without recursion; `NotJson` if it nests deeper than `MAX_JSON_DEPTH`."""
    level: list[Any] = [value]
    for _ in range(MAX_JSON_DEPTH):
        level = [
            child
            for item in level
            if isinstance(item, list | dict)
            for child in (item.values() if isinstance(item, dict) else item)
        ]
        if not level:
            return
    if any(isinstance(item, list | dict) for item in level):
        raise NotJson(_too_deep())
