"""`app.dialects.sniff.sniff`: the bare-root dialect rule of the spec (§4.2), first match wins."""

import pytest
from starlette.datastructures import Headers

from app.dialects.sniff import Dialect, sniff

GEMINI_ID = "0123456789abcdefghijklmnopqr"


@pytest.mark.parametrize(
    ("path", "headers", "query", "dialect"),
    [
        pytest.param("/upload/v1/files", {}, "upload_id=upload_x", Dialect.GEMINI, id="upload-path"),
        pytest.param("/v1/files/abc:download", {}, "alt=media", Dialect.GEMINI, id="download-verb"),
        pytest.param("/v1beta/files", {}, "", Dialect.GEMINI, id="v1beta"),
        pytest.param("/v1/files", {"x-goog-api-key": "k"}, "", Dialect.GEMINI, id="goog-key"),
        pytest.param("/v1/files", {"x-goog-api-client": "genai"}, "", Dialect.GEMINI, id="goog-client"),
        pytest.param("/v1/files", {}, "key=k", Dialect.GEMINI, id="key-query"),
        pytest.param("/v1/files", {"user-agent": "google-genai-sdk/3.4"}, "", Dialect.GEMINI, id="genai-ua"),
        pytest.param("/v1/files", {"anthropic-version": "2023-06-01"}, "", Dialect.ANTHROPIC, id="version"),
        pytest.param("/v1/files", {"x-api-key": "k"}, "", Dialect.ANTHROPIC, id="x-api-key"),
        pytest.param(
            "/v1/files", {"anthropic-beta": "files-api-2025-04-14"}, "", Dialect.ANTHROPIC, id="beta"
        ),
        pytest.param("/v1/files/file_abc", {}, "", Dialect.ANTHROPIC, id="anthropic-id"),
        pytest.param(f"/v1/files/{GEMINI_ID}", {}, "", Dialect.GEMINI, id="gemini-id"),
        pytest.param("/v1/files/file-abc/content", {}, "", Dialect.OPENAI, id="openai-id"),
        pytest.param("/v1/files", {"authorization": "Bearer k"}, "", Dialect.OPENAI, id="bearer-only"),
        pytest.param("/v1/uploads", {"x-stainless-lang": "python"}, "", Dialect.OPENAI, id="stainless"),
        pytest.param(
            "/v1/files/file_abc",
            {"x-stainless-lang": "python"},
            "",
            Dialect.ANTHROPIC,
            id="stainless-no-signal",
        ),
        *(
            pytest.param("/v1/files/file_abc", {"user-agent": agent}, "", Dialect.OPENAI, id=agent)
            for agent in ("OpenAI/Python 1.109.1", "AsyncOpenAI/Python 2.3.0", "OpenAI/JS 4.104.0")
        ),
        pytest.param(
            f"/v1/files/{GEMINI_ID}",
            {"user-agent": "OpenAI/Python 1.0"},
            "",
            Dialect.OPENAI,
            id="openai-ua-gemini-id",
        ),
        *(
            pytest.param("/v1/files/file-abc", {"user-agent": agent}, "", Dialect.ANTHROPIC, id=agent)
            for agent in ("Anthropic/Python 0.40.0", "AsyncAnthropic/Python 1.17.0", "Anthropic/JS 0.50.0")
        ),
        pytest.param(
            "/v1/files/file_abc", {"user-agent": "python-httpx/0.28"}, "", Dialect.ANTHROPIC, id="httpx-ua"
        ),
    ],
)
def test_sniff(path: str, headers: dict[str, str], query: str, dialect: Dialect) -> None:
    assert sniff(path, Headers(headers), query) is dialect


def test_sniff_prefers_gemini_signals_over_anthropic_ones() -> None:
    headers = Headers({"anthropic-version": "2023-06-01", "x-goog-api-key": "k"})
    assert sniff("/v1/files", headers) is Dialect.GEMINI


def test_sniff_prefers_anthropic_headers_over_an_openai_user_agent() -> None:
    headers = Headers({"user-agent": "OpenAI/Python 1.0", "anthropic-version": "2023-06-01"})
    assert sniff("/v1/files/file-abc", headers) is Dialect.ANTHROPIC


def test_sniff_prefers_google_signals_over_an_openai_user_agent() -> None:
    headers = Headers({"user-agent": "OpenAI/Python 1.0", "x-goog-api-key": "k"})
    assert sniff("/v1/files/file_abc", headers) is Dialect.GEMINI
