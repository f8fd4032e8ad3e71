"""The token usage a batch sums from answers, and the upstream's Retry-After in seconds."""

import email.utils
import time

import httpx
import pytest

from app.core.batch_requests import is_retryable, usage_of
from app.core.records import TokenUsage
from app.upstream import retry_after


def test_usage_of_a_chat_answer() -> None:
    usage = {
        "prompt_tokens": 10,
        "completion_tokens": 4,
        "total_tokens": 14,
        "prompt_tokens_details": {"cached_tokens": 3},
        "completion_tokens_details": {"reasoning_tokens": 2},
    }
    assert usage_of({"usage": usage}) == TokenUsage(10, 3, 4, 2, 14)


def test_usage_of_a_responses_answer() -> None:
    usage = {"input_tokens": 5, "output_tokens": 6, "output_tokens_details": {"reasoning_tokens": 1}}
    assert usage_of({"usage": usage}) == TokenUsage(5, 0, 6, 1, 11)


@pytest.mark.parametrize("body", [None, "text", {"usage": "x"}, {"usage": {"prompt_tokens": True}}])
def test_usage_of_an_answer_without_counts_is_zero(body: object) -> None:
    assert usage_of(body) == TokenUsage()


@pytest.mark.parametrize(
    ("status", "retried"), [(429, True), (500, True), (503, True), (400, False), (404, False)]
)
def test_only_rate_limits_and_server_errors_are_retried(status: int, retried: bool) -> None:
    assert is_retryable(status) is retried


def test_retry_after_prefers_milliseconds() -> None:
    assert retry_after(httpx.Headers({"retry-after-ms": "250", "retry-after": "9"})) == 0.25


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert retry_after(httpx.Headers({"retry-after": "2"})) == 2.0
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 < (retry_after(httpx.Headers({"retry-after": later})) or 0) <= 30


def test_retry_after_ignores_garbage() -> None:
    assert retry_after(httpx.Headers({"retry-after": "soon"})) is None
