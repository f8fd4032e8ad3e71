"""`HttpUpstream`: the OpenAI-compatible server batches run against, over HTTP with httpx.

httpx's failures are translated here, once, into the core's `UpstreamUnreachable`; the
retry rules are the core's (`app.core.batch_requests`).
"""

import email.utils
import time

import httpx

from app.core.batch_requests import UpstreamAnswer, UpstreamUnreachable
from app.settings import Settings

VERSION_PREFIX = "/v1"


class HttpUpstream:
    def __init__(self, settings: Settings) -> None:
        self.base_url = settings.batch_upstream_url
        headers = {"content-type": "application/json"}
        if settings.batch_upstream_api_key:
            headers["authorization"] = f"Bearer {settings.batch_upstream_api_key}"
        limits = httpx.Limits(max_connections=settings.batch_concurrency)
        self._client = httpx.AsyncClient(
            headers=headers, timeout=settings.batch_request_timeout_seconds, limits=limits
        )

    def url_for(self, endpoint: str) -> str:
        """A batch endpoint (`/v1/chat/completions`) under the base URL, which ends in /v1."""
        path = endpoint.removeprefix(VERSION_PREFIX) if self.base_url.endswith(VERSION_PREFIX) else endpoint
        return self.base_url + path

    async def post(self, endpoint: str, body: bytes) -> UpstreamAnswer:
        try:
            response = await self._client.post(self.url_for(endpoint), content=body)
        except httpx.TransportError as exc:
            raise UpstreamUnreachable(f"The upstream did not answer: {type(exc).__name__}: {exc}") from exc
        return UpstreamAnswer(
            status=response.status_code,
            body=response.content,
            request_id=response.headers.get("x-request-id"),
            retry_after_seconds=retry_after(response.headers),
        )

    async def aclose(self) -> None:
        await self._client.aclose()


def retry_after(headers: httpx.Headers) -> float | None:
    """Seconds to wait from `retry-after-ms`, or `retry-after` in seconds or as an HTTP date."""
    try:
        if (millis := headers.get("retry-after-ms")) is not None:
            return max(0.0, float(millis) / 1000)
        value = headers.get("retry-after")
        if value is None:
            return None
        if value.strip().replace(".", "", 1).isdigit():
            return float(value)
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time())
    except (ValueError, TypeError):
        return None
