"""OpenAI Files routes: parse the wire request, call the service, return a wire model or a stream."""

import re
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response, StreamingResponse
from starlette.datastructures import Headers

from app.auth import authenticate, masked
from app.dialects.openai.upload_form import create_file_from_form
from app.dialects.openai.wire import ErrorBody, FileDeleted, FileList, FileObject, file_json, json_response
from app.errors import InvalidRequest, RangeNotSatisfiable
from app.headers import (
    MalformedRange,
    UnsatisfiableRange,
    content_disposition,
    if_none_match_hits,
    if_range_allows,
    parse_range,
    quoted_etag,
)
from app.http_sendfile import BlobResponse
from app.metadata.store import FileRecord, Order
from app.service import FileService

MAX_LIST_LIMIT = 10_000


def bearer_key(headers: Headers) -> str:
    """The key in `Authorization: Bearer <key>`, or "" without one."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


async def authorized_service(request: Request) -> FileService:
    """The files of the project whose key is in `Authorization: Bearer <key>`."""
    key = bearer_key(request.headers)
    caller = await authenticate(
        request,
        key,
        missing="You didn't provide an API key. You need to provide your API key in an Authorization "
        "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
        invalid=f"Incorrect API key provided: {masked(key)}.",
    )
    service: FileService = request.app.state.service
    return service.for_project(caller.project)


ServiceDep = Annotated[FileService, Depends(authorized_service)]


router = APIRouter(
    dependencies=[Depends(authorized_service)],
    responses={code: {"model": ErrorBody} for code in (400, 401, 404, 413, 415, 503)},
)


@router.post("/files", response_model=FileObject)
async def create_file(request: Request, service: ServiceDep) -> Response:
    return json_response(file_json(await create_file_from_form(request, service)))


@router.get("/files", response_model=FileList)
async def list_files(
    service: ServiceDep,
    after: str | None = None,
    limit: str | None = None,
    order: str | None = None,
    purpose: str | None = None,
) -> Response:
    page = await list_page(
        service, after=after, limit=parse_limit(limit), order=parse_order(order), purpose=purpose
    )
    return json_response(page)


async def list_page(
    service: FileService, *, after: str | None, limit: int, order: Order, purpose: str | None
) -> dict[str, object]:
    """A list page as the wire's JSON. Empty `after=` and `purpose=` (openai 3.x sends them) are absent."""
    records, has_more = await service.list_files(
        purpose=purpose or None, after=after or None, limit=limit, order=order
    )
    first_id, last_id = (records[0].id, records[-1].id) if records else (None, None)
    data = [file_json(r) for r in records]
    return {"object": "list", "data": data, "first_id": first_id, "last_id": last_id, "has_more": has_more}


@router.get("/files/{file_id}", response_model=FileObject)
async def retrieve_file(file_id: str, service: ServiceDep) -> Response:
    return json_response(file_json(await service.get_file(file_id)))


@router.delete("/files/{file_id}", response_model=FileDeleted)
async def delete_file(file_id: str, service: ServiceDep) -> FileDeleted:
    record = await service.delete_file(file_id)
    return FileDeleted(id=record.id, deleted=True)


@router.api_route("/files/{file_id}/content", methods=["GET", "HEAD"], response_class=StreamingResponse)
async def download_file(file_id: str, request: Request, service: ServiceDep) -> Response:
    record = await service.get_downloadable(file_id)
    headers = _download_headers(record)
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None and if_none_match_hits(if_none_match, headers["etag"]):
        return Response(status_code=304, headers=headers)
    byte_range = _requested_range(request, record)
    start, end = byte_range or (0, record.bytes)
    if byte_range is not None:
        headers["content-range"] = f"bytes {start}-{end - 1}/{record.bytes}"
    headers["content-length"] = str(end - start)
    status = 200 if byte_range is None else 206
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers, media_type=record.mime_type)
    chunks = await service.open_blob(record.blob_key, start, end)  # fails here, before headers go out
    return BlobResponse(chunks, status_code=status, media_type=record.mime_type, headers=headers)


def _download_headers(record: FileRecord) -> dict[str, str]:
    return {
        "content-disposition": content_disposition(record.filename),
        "x-content-type-options": "nosniff",
        "accept-ranges": "bytes",
        "etag": quoted_etag(record.sha256),
    }


def _requested_range(request: Request, record: FileRecord) -> tuple[int, int] | None:
    """The byte range to send, or None for the whole file."""
    value = request.headers.get("range")
    if value is None:
        return None
    if_range = request.headers.get("if-range")
    if if_range is not None and not if_range_allows(if_range, quoted_etag(record.sha256)):
        return None  # the client's copy is stale: it needs the whole new file
    try:
        start, end = parse_range(value, record.bytes)
    except MalformedRange:
        return None
    except UnsatisfiableRange as exc:
        raise RangeNotSatisfiable(exc.size) from None
    return (start, end) if end > start else None  # only an empty file: nothing to slice


def parse_limit(raw: str | None) -> int:
    if raw is None or raw == "":
        return MAX_LIST_LIMIT
    value = int(raw) if re.fullmatch(r"[0-9]{1,6}", raw) else 0  # ASCII digits only, never huge
    if not 1 <= value <= MAX_LIST_LIMIT:
        raise InvalidRequest(f"limit must be between 1 and {MAX_LIST_LIMIT}.")
    return value


def parse_order(raw: str | None) -> Order:
    if raw is None or raw == "":
        return "desc"
    if raw not in ("asc", "desc"):
        raise InvalidRequest("order must be asc or desc.")
    return "asc" if raw == "asc" else "desc"
