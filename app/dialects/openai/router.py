"""OpenAI Files routes: parse the wire request, call the service, return a wire model or a stream."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from app.dialects.openai.upload_form import create_file_from_form
from app.dialects.openai.wire import ErrorBody, FileDeleted, FileList, FileObject
from app.errors import InvalidRequest, Unauthenticated
from app.headers import content_disposition
from app.metadata.store import Order
from app.service import FileService

MAX_LIST_LIMIT = 10_000


def get_service(request: Request) -> FileService:
    service: FileService = request.app.state.service
    return service


ServiceDep = Annotated[FileService, Depends(get_service)]


def require_api_key(request: Request, service: ServiceDep) -> None:
    """With keys configured, `Authorization: Bearer <key>` must name one of them."""
    accepted = service.settings.api_keys
    if not accepted:
        return
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise Unauthenticated(
            "You didn't provide an API key. You need to provide your API key in an Authorization "
            "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            code="invalid_api_key",
        )
    if key.strip() not in accepted:
        masked = f"{key[:3]}****{key[-2:]}" if len(key) > 8 else "****"
        raise Unauthenticated(f"Incorrect API key provided: {masked}.", code="invalid_api_key")


router = APIRouter(
    dependencies=[Depends(require_api_key)],
    responses={code: {"model": ErrorBody} for code in (400, 401, 404, 413, 415, 503)},
)


@router.post("/files", response_model=FileObject)
async def create_file(request: Request, service: ServiceDep) -> FileObject:
    return FileObject.from_record(await create_file_from_form(request, service))


@router.get("/files", response_model=FileList)
async def list_files(
    service: ServiceDep,
    after: str | None = None,
    limit: str | None = None,
    order: str | None = None,
    purpose: str | None = None,
) -> FileList:
    records, has_more = await service.list_files(
        purpose=purpose or None, after=after or None, limit=_limit(limit), order=_order(order)
    )
    data = [FileObject.from_record(r) for r in records]
    first_id, last_id = (data[0].id, data[-1].id) if data else (None, None)
    return FileList(data=data, first_id=first_id, last_id=last_id, has_more=has_more)


@router.get("/files/{file_id}", response_model=FileObject)
async def retrieve_file(file_id: str, service: ServiceDep) -> FileObject:
    return FileObject.from_record(await service.get_file(file_id))


@router.delete("/files/{file_id}", response_model=FileDeleted)
async def delete_file(file_id: str, service: ServiceDep) -> FileDeleted:
    record = await service.delete_file(file_id)
    return FileDeleted(id=record.id, deleted=True)


@router.get("/files/{file_id}/content", response_class=StreamingResponse)
async def download_file(file_id: str, service: ServiceDep) -> StreamingResponse:
    record, chunks = await service.open_content(file_id)
    headers = {
        "content-length": str(record.bytes),
        "content-disposition": content_disposition(record.filename),
        "x-content-type-options": "nosniff",
    }
    return StreamingResponse(chunks, media_type=record.mime_type, headers=headers)


def _limit(raw: str | None) -> int:
    if raw is None or raw == "":
        return MAX_LIST_LIMIT
    if not raw.strip().isdigit() or not 1 <= int(raw) <= MAX_LIST_LIMIT:
        raise InvalidRequest(f"limit must be between 1 and {MAX_LIST_LIMIT}.")
    return int(raw)


def _order(raw: str | None) -> Order:
    if raw is None or raw == "":
        return "desc"
    if raw not in ("asc", "desc"):
        raise InvalidRequest("order must be asc or desc.")
    return "asc" if raw == "asc" else "desc"
