"""Parameters of the OpenAI routes, checked in OpenAI's words: JSON bodies and their fields, and
the `limit` of list pages."""

import re
from typing import Any, TypeVar

from fastapi import Request

from app.core.errors import InvalidRequest, RequestTooLarge
from app.http.bodies import parse_client_json, read_capped

MAX_JSON_BODY_BYTES = 1024 * 1024  # 10,000 part ids fit with room to spare
T = TypeVar("T")


async def json_object(request: Request, *, empty_ok: bool = False) -> dict[str, Any]:
    """The body's JSON object; `empty_ok`: an empty body is `{}` (the SDK sends none when a call
    has no arguments)."""
    too_large = RequestTooLarge(f"Request body is too large: over {MAX_JSON_BODY_BYTES} bytes.")
    raw = await read_capped(request.stream(), MAX_JSON_BODY_BYTES, too_large)
    if empty_ok and not raw.strip():
        return {}
    body = parse_client_json(raw, "The request body")
    if not isinstance(body, dict):
        raise InvalidRequest("We could not parse the JSON body of your request: expected a JSON object.")
    return body


def required(body: dict[str, Any], name: str, kind: type[T]) -> T:
    value = body.get(name)
    if value is None:
        raise InvalidRequest(
            f"Missing required parameter: '{name}'.", param=name, code="missing_required_parameter"
        )
    if not isinstance(value, kind) or isinstance(value, bool):
        raise invalid_type(name, "an integer" if kind is int else "a string", value)
    return value


def optional_str(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise invalid_type(name, "a string", value)
    return value


def invalid_type(name: str, expected: str, value: object) -> InvalidRequest:
    return InvalidRequest(
        f"Invalid type for '{name}': expected {expected}, but got {type(value).__name__} instead.",
        param=name,
        code="invalid_type",
    )


def string_list(name: str, value: list[Any]) -> list[str]:
    """`value` if every item is a string."""
    if not all(isinstance(item, str) for item in value):
        raise invalid_type(name, "an array of strings", value)
    return value


def query_limit(raw: str | None, *, default: int, most: int, param: str | None = "limit") -> int:
    """A list page's `limit` query value; absent or empty is `default`."""
    if raw is None or raw == "":
        return default
    value = int(raw) if re.fullmatch(r"[0-9]{1,6}", raw) else 0  # ASCII digits only, never huge
    if not 1 <= value <= most:
        raise InvalidRequest(f"limit must be between 1 and {most}.", param=param)
    return value
