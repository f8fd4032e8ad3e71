"""httpx's one-shot functions (`get`, `post`, `stream`, …) for tests, without a TLS context per call.

`httpx.get(url)` builds a Client for the call, and each Client loads the CA bundle into a new
SSL context (20-30 ms of CPU) even for an http:// URL. Polling /healthz every 50 ms while six
servers start, or a test file's hundred raw requests, spent more CPU on that than on the
requests. These functions behave like httpx's (a new connection per call, the same defaults and
arguments) but share one context, made on first use. Only httpx and the standard library: the
SDK-era virtual environments import this too.
"""

import contextlib
import functools
import ssl
from collections.abc import Iterator
from typing import Any

import httpx


@functools.cache
def _tls() -> ssl.SSLContext:
    return httpx.create_ssl_context()


def _client(kwargs: dict[str, Any]) -> httpx.Client:
    """A client from the keywords httpx's functions give their Client; the rest stay for the request."""
    client_keys = ("auth", "cookies", "proxy", "timeout", "follow_redirects", "trust_env")
    options = {key: kwargs.pop(key) for key in client_keys if key in kwargs}
    verify = kwargs.pop("verify", True)
    options["verify"] = _tls() if verify is True else verify
    return httpx.Client(**options)


def request(method: str, url: str, **kwargs: Any) -> httpx.Response:
    with _client(kwargs) as client:
        return client.request(method, url, **kwargs)


@contextlib.contextmanager
def stream(method: str, url: str, **kwargs: Any) -> Iterator[httpx.Response]:
    with _client(kwargs) as client, client.stream(method, url, **kwargs) as response:
        yield response


get = functools.partial(request, "GET")
head = functools.partial(request, "HEAD")
options = functools.partial(request, "OPTIONS")
post = functools.partial(request, "POST")
put = functools.partial(request, "PUT")
patch = functools.partial(request, "PATCH")
delete = functools.partial(request, "DELETE")
