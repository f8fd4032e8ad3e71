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


def loads_json(raw: bytes | bytearray) -> Any:
    """`json.loads` (its `ValueError` for bad JSON), and a 400 for a lone surrogate escape
    ("\\ud800"): such a string can be neither stored nor echoed back in an error as UTF-8."""
    value = json.loads(raw)
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidRequest("The JSON body is not valid Unicode: it has a lone surrogate escape.") from None
    return value
