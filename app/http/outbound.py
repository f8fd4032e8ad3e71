"""Outbound webhook requests: the one place FileDock calls other servers.

A security boundary. Each attempt is one POST with no redirect followed, a short timeout, no
proxy from the environment, and the answer's body never read. Unless private targets are
allowed, the URL's host is resolved and every address checked at each attempt
(`app.core.webhooks.public_addresses`), and the connection goes to the address just checked,
with the name kept for `Host` and TLS (SNI and certificate), so a name that changes its answer
between the check and the connection (DNS rebinding) cannot reach an internal address.
"""

from collections.abc import Mapping
from typing import TYPE_CHECKING

from app import __version__
from app.core.errors import InvalidRequest, TargetRefused
from app.core.webhooks import Outcome, parse_target, public_addresses

if TYPE_CHECKING:
    import httpx

MAX_ERROR_CHARS = 500


class WebhookSender:
    """Implements `app.core.webhooks.Sender` with httpx, imported when the first webhook is sent:
    every server process has a sender, few send, and httpx (with the rich and pygments its
    command line pulls in where they are installed) costs a process 4 MiB."""

    def __init__(self, *, timeout_seconds: float, allow_private: bool) -> None:
        self._timeout_seconds = timeout_seconds
        self._allow_private = allow_private
        self._client: httpx.AsyncClient | None = None

    async def send(self, url: str, headers: Mapping[str, str], body: bytes) -> Outcome:
        import httpx

        try:
            target = parse_target(url)
        except InvalidRequest as exc:
            return Outcome(error=f"refused: {exc.message}")
        request_url = httpx.URL(url)
        headers = {**headers, "user-agent": f"FileDock-Webhooks/{__version__}"}
        extensions: dict[str, str] = {}
        if not self._allow_private:
            try:
                addresses = await public_addresses(target)
            except TargetRefused as exc:
                return Outcome(error=f"refused: {exc.reason}")
            headers["host"] = request_url.netloc.decode("ascii")
            extensions["sni_hostname"] = request_url.raw_host.decode("ascii")
            request_url = request_url.copy_with(host=addresses[0])
        return await self._post(request_url, headers, body, extensions)

    async def _post(
        self, url: "httpx.URL", headers: Mapping[str, str], body: bytes, extensions: dict[str, str]
    ) -> Outcome:
        import httpx

        if self._client is None:
            self._client = httpx.AsyncClient(
                follow_redirects=False, timeout=self._timeout_seconds, trust_env=False
            )
        try:
            async with self._client.stream(
                "POST", url, headers=headers, content=body, extensions=extensions
            ) as response:
                return Outcome(status_code=response.status_code)
        except httpx.TimeoutException:
            return Outcome(error=f"no answer within {self._timeout_seconds} s")
        except httpx.HTTPError as exc:
            return Outcome(error=f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS])

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
