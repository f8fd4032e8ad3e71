"""Credentials on the wire: where each dialect carries its API key, and the caller it stands for.

The rules of keys and projects are `app.core.tenancy`'s; this module only reads headers and
keeps the answer in the request's scope.
"""

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import Scope

from app.core.errors import Unauthenticated
from app.core.tenancy import PROJECT_HEADER, Authenticator, Caller
from app.http.access_log import CALLER


def bearer_key(headers: Headers) -> str:
    """The key in `Authorization: Bearer <key>`, or "" without one."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


async def identify(scope: Scope, key: str) -> Caller | None:
    """The caller a request's key stands for, or None. Kept in the request's scope, so a request
    asked twice (the fast path, then its route) is looked up and rate-counted once."""
    known: Caller | None = scope.get(CALLER)
    if known is not None:
        return known
    authenticator: Authenticator = scope["app"].state.authenticator
    caller = await authenticator.caller(key, Headers(scope=scope).get(PROJECT_HEADER))
    if caller is not None:
        scope[CALLER] = caller
    return caller


async def authenticate(request: Request, key: str, *, missing: str, invalid: str) -> Caller:
    """The caller of this request, or `Unauthenticated` with the dialect's message. The answer is
    the same whether or not the requested file exists."""
    caller = await identify(request.scope, key)
    if caller is None:
        raise Unauthenticated(invalid if key else missing, code="invalid_api_key")
    return caller


def anthropic_key(headers: Headers) -> str:
    """`x-api-key` (SDK eras 0.x and 1.x) or `Authorization: Bearer` (2.x)."""
    return headers.get("x-api-key", "").strip() or bearer_key(headers)


def gemini_key(request: Request) -> str:
    """`x-goog-api-key` (the SDK) or `?key=` (REST callers)."""
    return request.headers.get("x-goog-api-key") or request.query_params.get("key") or ""
