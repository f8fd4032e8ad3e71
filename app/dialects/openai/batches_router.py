"""OpenAI Batch routes: parse the wire request, call `BatchService`, return the Batch object."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from app.core.batches import BatchService, NewBatch
from app.core.errors import InvalidRequest
from app.dialects.openai import purposes
from app.dialects.openai.batches_wire import BatchList, BatchObject
from app.dialects.openai.files_router import ServiceDep, authorized_service
from app.dialects.openai.json_body import invalid_type, json_object, query_limit, required
from app.dialects.openai.wire import ErrorBody

# The SDK's `endpoint` values, less "/v1/videos", which the real service no longer accepts.
ENDPOINTS = (
    "/v1/responses",
    "/v1/chat/completions",
    "/v1/embeddings",
    "/v1/completions",
    "/v1/moderations",
    "/v1/images/generations",
    "/v1/images/edits",
)
COMPLETION_WINDOWS = ("24h",)
MAX_METADATA_PAIRS, MAX_METADATA_KEY, MAX_METADATA_VALUE = 16, 64, 512
DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT = 20, 100


async def get_batches(request: Request, files: ServiceDep) -> BatchService:
    batches: BatchService = request.app.state.batches
    return batches.for_project(files.project)


BatchesDep = Annotated[BatchService, Depends(get_batches)]

router = APIRouter(
    dependencies=[Depends(authorized_service)],
    responses={code: {"model": ErrorBody} for code in (400, 401, 404, 413, 503)},
)


@router.post("/batches", response_model=BatchObject)
async def create_batch(request: Request, batches: BatchesDep) -> BatchObject:
    body = await json_object(request)
    new = NewBatch(
        input_file_id=required(body, "input_file_id", str),
        endpoint=_one_of(required(body, "endpoint", str), ENDPOINTS, "endpoint"),
        completion_window=_one_of(
            body.get("completion_window", "24h"), COMPLETION_WINDOWS, "completion_window"
        ),
        metadata=_metadata(body.get("metadata")),
        output_expires_after=_expires_after(body.get("output_expires_after")),
    )
    return BatchObject.from_record(await batches.create(new))


@router.get("/batches", response_model=BatchList)
async def list_batches(batches: BatchesDep, after: str | None = None, limit: str | None = None) -> BatchList:
    records, has_more = await batches.list(
        after=after or None, limit=query_limit(limit, default=DEFAULT_LIST_LIMIT, most=MAX_LIST_LIMIT)
    )
    data = [BatchObject.from_record(r) for r in records]
    first_id, last_id = (data[0].id, data[-1].id) if data else (None, None)
    return BatchList(data=data, first_id=first_id, last_id=last_id, has_more=has_more)


@router.get("/batches/{batch_id}", response_model=BatchObject)
async def retrieve_batch(batch_id: str, batches: BatchesDep) -> BatchObject:
    return BatchObject.from_record(await batches.get(batch_id))


@router.post("/batches/{batch_id}/cancel", response_model=BatchObject)
async def cancel_batch(batch_id: str, batches: BatchesDep) -> BatchObject:
    # The SDK sends Content-Type: application/json with an empty body: never parse it.
    return BatchObject.from_record(await batches.cancel(batch_id))


def _one_of(value: object, allowed: tuple[str, ...], name: str) -> str:
    if not isinstance(value, str) or value not in allowed:
        choices = ", ".join(f"'{a}'" for a in allowed)
        raise InvalidRequest(
            f"Invalid value for '{name}': {value!r}. Supported values are: {choices}.",
            param=name,
            code="invalid_value",
        )
    return value


def _metadata(value: object) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise invalid_type("metadata", "an object", value)
    if len(value) > MAX_METADATA_PAIRS:
        raise InvalidRequest(
            f"Invalid 'metadata': at most {MAX_METADATA_PAIRS} pairs are allowed.", param="metadata"
        )
    for key, item in value.items():
        if len(key) > MAX_METADATA_KEY or not isinstance(item, str) or len(item) > MAX_METADATA_VALUE:
            raise InvalidRequest(
                f"Invalid 'metadata': keys are at most {MAX_METADATA_KEY} characters, values are "
                f"strings of at most {MAX_METADATA_VALUE}.",
                param=f"metadata.{key}",
            )
    return value


def _expires_after(value: object) -> int | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise invalid_type("output_expires_after", "an object", value)
    try:
        return purposes.check_expires_after(value.get("anchor"), value.get("seconds"))
    except InvalidRequest as exc:
        param = f"output_{exc.param}" if exc.param else None
        raise InvalidRequest(
            exc.message.replace("'expires_after", "'output_expires_after"), param=param, code=exc.code
        ) from None
