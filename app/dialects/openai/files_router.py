"""OpenAI Files routes: parse the wire request, call the service, return a wire model or a stream."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response, StreamingResponse

from app.core.errors import InvalidRequest
from app.core.files import FileService
from app.core.records import FileRecord, Order
from app.core.tenancy import masked
from app.dialects.openai.json_body import query_limit
from app.dialects.openai.purposes import UNDOWNLOADABLE_PURPOSES
from app.dialects.openai.upload_form import create_file_from_form
from app.dialects.openai.wire import ErrorBody, FileDeleted, FileList, FileObject, file_json, json_response
from app.http.credentials import authenticate, bearer_key
from app.http.downloads import download_response

MAX_LIST_LIMIT = 10_000


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


# One route per method: FastAPI names a two-method route's operation once, for both, and
# /openapi.json would hold the same operationId twice.
@router.get("/files/{file_id}/content", response_class=StreamingResponse)
@router.head("/files/{file_id}/content", response_class=StreamingResponse)
async def download_file(file_id: str, request: Request, service: ServiceDep) -> Response:
    record = await service.get_file(file_id)
    service.check_downloadable(record, vendor_allows_download, file_id)
    return await download_response(request, record, service)


def vendor_allows_download(record: FileRecord) -> bool:
    """The real API refuses the content of the purposes clients upload for the tools."""
    return record.purpose not in UNDOWNLOADABLE_PURPOSES


def parse_limit(raw: str | None) -> int:
    return query_limit(raw, default=MAX_LIST_LIMIT, most=MAX_LIST_LIMIT, param=None)


def parse_order(raw: str | None) -> Order:
    if raw is None or raw == "":
        return "desc"
    if raw not in ("asc", "desc"):
        raise InvalidRequest("order must be asc or desc.")
    return "asc" if raw == "asc" else "desc"
