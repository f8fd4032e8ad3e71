"""Tell the dialect of a bare-root request from its path and headers, and route it to that face.

The rule of ../shared/spec/anthropic-gemini.md §4.2, first match wins:

1. a path under `/upload/` is a Gemini upload (its chunk requests carry no API key);
2. a `:download` path or a `v1beta` segment is Gemini;
3. `x-goog-api-key`, `x-goog-api-client`, any `x-goog-upload-*` header, a `key=` query or a
   `google-genai-sdk` user agent is Gemini;
4. `anthropic-version`, `x-api-key` or `anthropic-beta` is Anthropic (era C authenticates with
   `Authorization: Bearer`, so auth alone tells nothing);
5. the user agent of an official SDK: the openai SDKs send `OpenAI/Python 1.x` (the client
   class's name: `AsyncOpenAI/…`, `AzureOpenAI/…`) or `OpenAI/JS 4.x`, so a product token
   containing `OpenAI` is OpenAI, and one containing `Anthropic` (`Anthropic/Python`,
   `AsyncAnthropic/…`, `Anthropic/JS`) is Anthropic. The SDK's own signal outranks the shape
   of an id: `GET /v1/files/file_abc` from the openai SDK is OpenAI's (404). The
   `x-stainless-*` headers are not used: the openai and anthropic SDKs both send them;
6. otherwise the file id in the path decides (`file_…` Anthropic, a bare Gemini id Gemini),
   and anything else is OpenAI.

Requests under `/openai`, `/anthropic` and `/gemini` (or `/healthz`, `/readyz`, `/metrics`,
`/docs`, `/openapi.json`) are left alone. Either way the dispatcher names the request's dialect in
its scope, for the access log and the metrics.
"""

import re
from enum import StrEnum
from urllib.parse import parse_qs

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from app.http.access_log import DIALECT
from app.http.errors import ORIGINAL_PATH

EXPLICIT_PREFIXES = (
    *("/openai", "/anthropic", "/gemini"),
    *("/healthz", "/readyz", "/metrics", "/docs", "/openapi.json"),
)
_FILE_ID_SEGMENT = re.compile(r"^/v1[^/]*/files/([^/:]+)")
_GEMINI_ID = re.compile(r"(files/)?[a-z0-9]{28}")


class Dialect(StrEnum):
    OPENAI = "openai"
    ANTHROPIC = "anthropic"
    GEMINI = "gemini"


def sniff(path: str, headers: Headers, query_string: str = "") -> Dialect:
    if path.startswith("/upload/") or ":download" in path or "v1beta" in path.split("/"):
        return Dialect.GEMINI
    if _has_google_signal(headers, query_string):
        return Dialect.GEMINI
    if any(name in headers for name in ("anthropic-version", "x-api-key", "anthropic-beta")):
        return Dialect.ANTHROPIC
    return _by_user_agent(headers.get("user-agent", "")) or _by_file_id(path)


def _has_google_signal(headers: Headers, query_string: str) -> bool:
    if "x-goog-api-key" in headers or "x-goog-api-client" in headers:
        return True
    if any(name.startswith("x-goog-upload-") for name in headers):
        return True
    if headers.get("user-agent", "").startswith("google-genai-sdk"):
        return True
    return "key" in parse_qs(query_string)


def _by_user_agent(user_agent: str) -> Dialect | None:
    """The dialect of an official OpenAI or Anthropic SDK, from its user agent's product token."""
    product = user_agent.split("/", 1)[0].lower() if "/" in user_agent else ""
    if "openai" in product:
        return Dialect.OPENAI
    if "anthropic" in product:
        return Dialect.ANTHROPIC
    return None


def _by_file_id(path: str) -> Dialect:
    match = _FILE_ID_SEGMENT.match(path)
    if match is None:
        return Dialect.OPENAI
    if match[1].startswith("file_"):
        return Dialect.ANTHROPIC
    return Dialect.GEMINI if _GEMINI_ID.fullmatch(match[1]) else Dialect.OPENAI


class DialectDispatcher:
    """Pure ASGI: a bare-root Anthropic or Gemini request is re-pathed under its face's prefix."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not path or path.startswith(EXPLICIT_PREFIXES):
            if path:
                scope[DIALECT] = _explicit_dialect(path)
            await self.app(scope, receive, send)
            return
        query = scope.get("query_string", b"").decode("latin-1")
        dialect = sniff(path, Headers(scope=scope), query)
        scope[DIALECT] = dialect.value
        if dialect is not Dialect.OPENAI:
            # Re-pathed in place: the access log, outside, reads what routing found in this scope.
            prefix = "/" + dialect.value
            scope[ORIGINAL_PATH] = path  # what the client sent, for error messages and logs
            scope["path"] = prefix + path
            scope["raw_path"] = prefix.encode() + scope.get("raw_path", path.encode())
            scope["filedock.sniffed"] = True
        await self.app(scope, receive, send)


def _explicit_dialect(path: str) -> str | None:
    """The dialect a path names by its prefix; None for /healthz, /metrics and the docs."""
    first = path.split("/", 2)[1]
    return first if first in (d.value for d in Dialect) else None
