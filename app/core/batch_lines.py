"""A batch's input file, line by line: each line a request `{custom_id, method, url, body}`.

`read_lines` streams the file in bounded memory (one line at a time, at most
`max_line_bytes`); `parse_request` checks one line as the real service does and `InputCheck`
the whole file (unique custom_ids, at most 50,000 requests, 50,000 embedding inputs), so a
refused file reports every fault with its 1-based line number.
"""

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from app.core.records import BatchLineError

MAX_REQUESTS = 50_000
MAX_EMBEDDING_INPUTS = 50_000
MAX_REPORTED_ERRORS = 100
EMBEDDINGS_ENDPOINT = "/v1/embeddings"


@dataclass(frozen=True)
class BatchRequest:
    line: int
    custom_id: str
    body: dict[str, Any]


class LineTooLong(Exception):
    def __init__(self, line: int) -> None:
        super().__init__(line)
        self.line = line


async def read_lines(chunks: AsyncIterator[bytes], max_line_bytes: int) -> AsyncIterator[tuple[int, bytes]]:
    """`(line number, bytes)` of every line, blank ones included; `LineTooLong` past the limit."""
    pending = bytearray()
    number = 0
    async for chunk in chunks:
        pending += chunk
        start = 0
        while (end := pending.find(b"\n", start)) != -1:
            number += 1
            if end - start > max_line_bytes:
                raise LineTooLong(number)
            yield number, bytes(pending[start:end])
            start = end + 1
        del pending[:start]
        if len(pending) > max_line_bytes:
            raise LineTooLong(number + 1)
    if pending:
        yield number + 1, bytes(pending)


def is_blank(raw: bytes) -> bool:
    return not raw.strip()


def parse_request(number: int, raw: bytes, endpoint: str) -> BatchRequest | BatchLineError:
    """One line as a request for `endpoint`, or the first thing wrong with it."""
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        return BatchLineError("invalid_json_line", "This line is not parseable as valid JSON.", number)
    custom_id, method, url, body = (value.get(k) for k in ("custom_id", "method", "url", "body"))
    for name, item, kind in (("custom_id", custom_id, str), ("method", method, str), ("url", url, str)):
        if item is None:
            return _error(
                "missing_required_parameter", f"Missing required parameter: '{name}'.", number, name
            )
        if not isinstance(item, kind):
            return _error("invalid_type", f"Invalid type for '{name}': expected a string.", number, name)
    if method != "POST":
        return _error(
            "invalid_method", f"Invalid method '{method}': only POST is supported.", number, "method"
        )
    if url != endpoint:
        message = f"The URL '{url}' of this request does not match the batch's endpoint '{endpoint}'."
        return _error("url_mismatch", message, number, "url")
    if not isinstance(body, dict):
        return _error("invalid_request", "The request 'body' must be a JSON object.", number, "body")
    assert isinstance(custom_id, str)
    return BatchRequest(number, custom_id, body)


def _error(code: str, message: str, line: int, param: str) -> BatchLineError:
    return BatchLineError(code, message, line, param)


def embedding_inputs(body: dict[str, Any]) -> int:
    """How many inputs an embeddings request embeds: one string (or token list), or a list of them."""
    value = body.get("input")
    if isinstance(value, list) and value and not all(isinstance(v, int) for v in value):
        return len(value)
    return 1


@dataclass
class InputCheck:
    """Fed every line of a batch's input file; says what is wrong with it, if anything."""

    endpoint: str
    requests: int = 0
    embedding_inputs: int = 0
    model: str | None = None
    errors: list[BatchLineError] = field(default_factory=list)
    _custom_ids: set[str] = field(default_factory=set)

    def feed(self, number: int, raw: bytes) -> None:
        if is_blank(raw):
            return
        parsed = parse_request(number, raw, self.endpoint)
        if isinstance(parsed, BatchLineError):
            self._refuse(parsed)
            return
        self.requests += 1
        if parsed.custom_id in self._custom_ids:
            message = (
                f"The custom_id '{parsed.custom_id}' is a duplicate of another request's: "
                "custom_id must be unique within a batch."
            )
            self._refuse(_error("duplicate_custom_id", message, number, "custom_id"))
        self._custom_ids.add(parsed.custom_id)
        if self.endpoint == EMBEDDINGS_ENDPOINT:
            self.embedding_inputs += embedding_inputs(parsed.body)
        model = parsed.body.get("model")
        if self.model is None and isinstance(model, str):
            self.model = model

    def finish(self) -> list[BatchLineError]:
        """Every fault found (the first of each line's), the file-wide ones last."""
        if self.requests == 0 and not self.errors:
            self.errors.append(BatchLineError("empty_file", "The input file has no requests."))
        if self.requests > MAX_REQUESTS:
            message = f"The input file has {self.requests} requests; a batch may have at most {MAX_REQUESTS}."
            self.errors.append(BatchLineError("too_many_tasks", message))
        if self.embedding_inputs > MAX_EMBEDDING_INPUTS:
            message = (
                f"The batch embeds {self.embedding_inputs} inputs; an embeddings batch may embed at "
                f"most {MAX_EMBEDDING_INPUTS} across all its requests."
            )
            self.errors.append(BatchLineError("too_many_tasks", message, param="body.input"))
        return self.errors

    def _refuse(self, error: BatchLineError) -> None:
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append(error)
