"""Sending one batch request to the upstream, with retries, and the line its outcome becomes.

The upstream is anything that implements `Upstream` (`app.upstream.HttpUpstream` speaks HTTP
to an OpenAI-compatible server). 429, 5xx and a dropped connection are retried with backoff,
honouring the upstream's Retry-After; any other answer is final: a 2xx goes to the output
file, the rest to the error file with the upstream's status and body.
"""

import asyncio
import json
import random
from dataclasses import dataclass
from typing import Any, Protocol

from app.core import ids
from app.core.batch_lines import BatchRequest
from app.core.records import LineResult, TokenUsage
from app.settings import Settings


class UpstreamUnreachable(Exception):
    """No answer: the connection was refused, dropped or timed out."""


@dataclass(frozen=True)
class UpstreamAnswer:
    status: int
    body: bytes
    request_id: str | None = None
    retry_after_seconds: float | None = None


class Upstream(Protocol):
    async def post(self, endpoint: str, body: bytes) -> UpstreamAnswer: ...

    async def aclose(self) -> None: ...


def is_retryable(status: int) -> bool:
    return status == 429 or status >= 500


class RequestSender:
    """Sends requests with at most `batch_concurrency` in flight across every batch of the process."""

    def __init__(self, upstream: Upstream, settings: Settings) -> None:
        self.upstream = upstream
        self.settings = settings
        self._slots = asyncio.Semaphore(settings.batch_concurrency)

    async def send(self, endpoint: str, request: BatchRequest) -> LineResult:
        body = json.dumps(request.body).encode()
        attempts = self.settings.batch_max_attempts
        for attempt in range(1, attempts + 1):
            try:
                async with self._slots:
                    answer = await self.upstream.post(endpoint, body)
            except UpstreamUnreachable as exc:
                if attempt == attempts:
                    return error_line(request, "upstream_unreachable", f"{exc} (after {attempts} attempts)")
                await asyncio.sleep(self.retry_delay(attempt, None))
                continue
            if is_retryable(answer.status) and attempt < attempts:
                await asyncio.sleep(self.retry_delay(attempt, answer.retry_after_seconds))
                continue
            return answer_line(request, answer)
        raise AssertionError("unreachable: the last attempt always returns")

    def retry_delay(self, attempt: int, retry_after: float | None) -> float:
        """Retry-After when the upstream gave one, else exponential backoff with jitter."""
        if retry_after is None:
            retry_after = self.settings.batch_retry_base_seconds * 2 ** (attempt - 1) * random.uniform(0.5, 1)
        return max(0.0, min(retry_after, self.settings.batch_retry_max_seconds))


def answer_line(request: BatchRequest, answer: UpstreamAnswer) -> LineResult:
    body = _json_or_text(answer.body)
    line = {
        "id": ids.new_batch_request_id(),
        "custom_id": request.custom_id,
        "response": {
            "status_code": answer.status,
            "request_id": answer.request_id or ids.new_request_id(),
            "body": body,
        },
        "error": None,
    }
    ok = 200 <= answer.status < 300
    return LineResult(request.line, ok, json.dumps(line), usage_of(body) if ok else TokenUsage())


def error_line(request: BatchRequest, code: str, message: str) -> LineResult:
    return LineResult(request.line, False, failure_text(request.custom_id, code, message))


def failure_text(custom_id: str, code: str, message: str) -> str:
    """An error-file line for a request that got no answer at all."""
    line = {
        "id": ids.new_batch_request_id(),
        "custom_id": custom_id,
        "response": None,
        "error": {"code": code, "message": message},
    }
    return json.dumps(line)


def _json_or_text(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", errors="replace")


def usage_of(body: Any) -> TokenUsage:
    """The token counts of a chat, completions, embeddings or responses answer, where present."""
    usage = body.get("usage") if isinstance(body, dict) else None
    if not isinstance(usage, dict):
        return TokenUsage()
    inputs = _count(usage.get("input_tokens", usage.get("prompt_tokens")))
    outputs = _count(usage.get("output_tokens", usage.get("completion_tokens")))
    input_details = usage.get("input_tokens_details") or usage.get("prompt_tokens_details")
    output_details = usage.get("output_tokens_details") or usage.get("completion_tokens_details")
    return TokenUsage(
        input_tokens=inputs,
        cached_tokens=_count(_get(input_details, "cached_tokens")),
        output_tokens=outputs,
        reasoning_tokens=_count(_get(output_details, "reasoning_tokens")),
        total_tokens=_count(usage.get("total_tokens")) or inputs + outputs,
    )


def _get(details: Any, name: str) -> Any:
    return details.get(name) if isinstance(details, dict) else None


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0
