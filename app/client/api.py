"""`FileDockClient`: the OpenAI dialect of a running FileDock, over HTTP with httpx.

Every failure leaves this module as a `ClientError` whose message is one line saying what went
wrong and what to do about it; httpx's own errors are translated here and nowhere else.
"""

import contextlib
from collections.abc import Iterator
from typing import IO, Any

import httpx

# Connecting should be quick; a response may take long (assembling a large Upload).
TIMEOUT = httpx.Timeout(300.0, connect=10.0)


class ClientError(Exception):
    """A request that failed; the message says what to fix."""


def api_base(url: str) -> str:
    """The OpenAI base URL of a server: `<url>/v1`, unless `url` already ends in `/v1`."""
    url = url.rstrip("/")
    return url if url.endswith("/v1") else f"{url}/v1"


class FileDockClient:
    """One connection pool to one server; safe to share between threads (parts in parallel)."""

    def __init__(self, url: str, api_key: str | None, *, connections: int = 8) -> None:
        self.url = url
        headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        self._http = httpx.Client(base_url=api_base(url), headers=headers, timeout=TIMEOUT, limits=limits)

    def __enter__(self) -> "FileDockClient":
        return self

    def __exit__(self, *_: object) -> None:
        self._http.close()

    # --- files -------------------------------------------------------------------------------

    def list_files(self, *, purpose: str | None, limit: int, after: str | None = None) -> dict[str, Any]:
        params: dict[str, str | int] = {"limit": limit, "order": "desc"}
        if purpose:
            params["purpose"] = purpose
        if after:
            params["after"] = after
        return self._json("GET", "/files", params=params)

    def get_file(self, file_id: str) -> dict[str, Any]:
        return self._json("GET", f"/files/{file_id}")

    def delete_file(self, file_id: str) -> dict[str, Any]:
        return self._json("DELETE", f"/files/{file_id}")

    def create_file(self, filename: str, body: IO[bytes], purpose: str) -> dict[str, Any]:
        # purpose first: the server checks a batch file's lines while they stream in.
        return self._json(
            "POST", "/files", data={"purpose": purpose}, files={"file": (filename, body, _OCTETS)}
        )

    def content_headers(self, file_id: str) -> httpx.Headers:
        with self._translated(), self._http.stream("HEAD", f"/files/{file_id}/content") as response:
            self._check(response)
            return response.headers

    @contextlib.contextmanager
    def stream_content(self, file_id: str, headers: dict[str, str]) -> Iterator[httpx.Response]:
        """The content response, unread, for the caller to stream; errors raised before."""
        with self._translated(), self._http.stream("GET", f"/files/{file_id}/content", headers=headers) as r:
            self._check(r)
            yield r

    # --- uploads -----------------------------------------------------------------------------

    def create_upload(self, filename: str, size: int, purpose: str, mime_type: str) -> dict[str, Any]:
        body = {"filename": filename, "bytes": size, "purpose": purpose, "mime_type": mime_type}
        return self._json("POST", "/uploads", json=body)

    def add_part(self, upload_id: str, body: IO[bytes]) -> dict[str, Any]:
        return self._json("POST", f"/uploads/{upload_id}/parts", files={"data": ("upload", body, _OCTETS)})

    def complete_upload(self, upload_id: str, part_ids: list[str]) -> dict[str, Any]:
        return self._json("POST", f"/uploads/{upload_id}/complete", json={"part_ids": part_ids})

    def cancel_upload(self, upload_id: str) -> dict[str, Any]:
        return self._json("POST", f"/uploads/{upload_id}/cancel")

    def list_uploads(self, *, after: str | None = None) -> dict[str, Any]:
        params = {"after": after} if after else {}
        return self._json("GET", "/uploads", params=params)

    # --- plumbing ----------------------------------------------------------------------------

    def _json(self, method: str, path: str, **options: Any) -> dict[str, Any]:
        with self._translated():
            response = self._http.request(method, path, **options)
        self._check(response)
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise ClientError(
                f"{self.url} answered {method} {path} with something other than JSON: is it FileDock?"
            )
        return answer

    def _check(self, response: httpx.Response) -> None:
        if response.status_code < 400:
            return
        response.read()
        raise ClientError(refusal_message(self.url, response))

    @contextlib.contextmanager
    def _translated(self) -> Iterator[None]:
        try:
            yield
        except httpx.ConnectError as exc:
            raise ClientError(
                f"cannot connect to FileDock at {self.url} ({exc}): start it (`filedock serve`) "
                "or pass --url / set FILEDOCK_URL"
            ) from exc
        except httpx.TimeoutException as exc:
            raise ClientError(f"{self.url} did not answer in time ({type(exc).__name__}); retry") from exc
        except httpx.HTTPError as exc:
            raise ClientError(f"the connection to {self.url} failed: {type(exc).__name__}: {exc}") from exc


_OCTETS = "application/octet-stream"


def refusal_message(url: str, response: httpx.Response) -> str:
    """One line for a 4xx or 5xx answer: the server's own message, and what to do."""
    message = _server_message(response)
    status = response.status_code
    if status == 401:
        return f"{url} refused the API key: {message} Pass --api-key or set FILEDOCK_API_KEY."
    if status == 404:
        return f"{message} (see `filedock files ls`)"
    if status == 429:
        return f"{message} Wait a minute and retry."
    if status >= 500:
        return f"the server failed ({status}): {message} Retry, or see the server's log."
    return message


def _server_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
    text = response.text.strip().replace("\n", " ")[:200]
    return f"HTTP {response.status_code} {response.reason_phrase}" + (f": {text}" if text else "")
