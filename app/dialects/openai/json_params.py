"""Parameters of OpenAI's JSON request bodies: the body as an object, required and typed fields."""

from typing import Any, TypeVar

from fastapi import Request

from app.core.errors import InvalidRequest, RequestTooLarge
from app.http.bodies import loads_json, read_capped

MAX_JSON_BODY_BYTES = 1024 * 1024  # 10,000 part ids fit with room to spare
T = TypeVar("T")


async def json_object(request: Request) -> dict[str, Any]:
    too_large = RequestTooLarge(f"Request body is too large: over {MAX_JSON_BODY_BYTES} bytes.")
    raw = await read_capped(request.stream(), MAX_JSON_BODY_BYTES, too_large)
    try:
        body = loads_json(raw)
    except ValueError:
        body = None
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
