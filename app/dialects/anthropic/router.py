"""Anthropic Files routes (`/v1/files…` under `/anthropic`, or the bare root when sniffed as Anthropic).

Every SDK era is served: 0.x (`?beta=true`, `anthropic-beta`, `after_id`/`before_id` paging),
1.x and 2.x (`page` cursors, `ids[]`), with `x-api-key` or `Authorization: Bearer` auth.
`?beta=true` and `anthropic-beta` are markers only and change nothing.
"""

import re
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import Response, StreamingResponse

from app.core.errors import FileNotFound, InvalidRequest
from app.core.files import FileService
from app.core.records import FileRecord
from app.dialects.anthropic import errors as anthropic_errors
from app.dialects.anthropic.ids import from_anthropic_id, to_anthropic_id
from app.dialects.anthropic.upload_form import create_file_from_form
from app.dialects.anthropic.wire import ErrorBody, FileDeleted, FileMetadata, FilePage
from app.http.apps import create_dialect_app
from app.http.credentials import anthropic_key, authenticate
from app.http.downloads import download_response
from app.http.middleware import EchoRequestId

MAX_IDS = 100
_PAGE_CURSOR = re.compile(r"page_([A-Za-z0-9]{24})")


async def authorized_service(request: Request) -> FileService:
    """The files of the project whose key is in `x-api-key` (eras A, B) or `Authorization: Bearer`
    (era C)."""
    key = anthropic_key(request.headers)
    caller = await authenticate(
        request, key, missing="x-api-key header is required", invalid="invalid x-api-key"
    )
    service: FileService = request.app.state.service
    return service.for_project(caller.project)


ServiceDep = Annotated[FileService, Depends(authorized_service)]


router = APIRouter(
    prefix="/v1",
    dependencies=[Depends(authorized_service)],
    responses={code: {"model": ErrorBody} for code in (400, 401, 404, 413, 503)},
)


@router.post("/files", response_model=FileMetadata)
async def upload_file(request: Request, service: ServiceDep) -> FileMetadata:
    return _metadata(await create_file_from_form(request, service), service)


@router.get("/files", response_model=FilePage)
async def list_files(
    request: Request,
    service: ServiceDep,
    limit: str | None = None,
    after_id: str | None = None,
    before_id: str | None = None,
    page: str | None = None,
) -> FilePage:
    wanted = request.query_params.getlist("ids[]") or request.query_params.getlist("ids")
    if wanted:
        return await _listed_by_id(wanted, service)
    size = _limit(limit, service)
    if before_id:
        records, has_more = await service.list_files(
            purpose=None, after=_cursor_id(before_id, "before_id"), limit=size, order="asc"
        )
        return _page(list(reversed(records)), has_more, service, forward=False)
    after = _page_cursor(page) if page else _cursor_id(after_id, "after_id") if after_id else None
    records, has_more = await service.list_files(purpose=None, after=after, limit=size, order="desc")
    return _page(records, has_more, service, forward=True)


@router.get("/files/{file_id}", response_model=FileMetadata)
async def retrieve_file_metadata(file_id: str, service: ServiceDep) -> FileMetadata:
    return _metadata(await _get(file_id, service), service)


@router.delete("/files/{file_id}", response_model=FileDeleted)
async def delete_file(file_id: str, service: ServiceDep) -> FileDeleted:
    try:
        record = await service.delete_file(from_anthropic_id(file_id) or "")
    except FileNotFound:
        raise FileNotFound(file_id) from None
    return FileDeleted(id=to_anthropic_id(record.id))


@router.api_route("/files/{file_id}/content", methods=["GET", "HEAD"], response_class=StreamingResponse)
async def download_file(file_id: str, request: Request, service: ServiceDep) -> Response:
    record = await _get(file_id, service)
    service.check_downloadable(record, _vendor_allows_download, file_id)
    return await download_response(request, record, service)


def create_anthropic_app() -> FastAPI:
    sub = create_dialect_app("FileDock (Anthropic)", router, anthropic_errors.RENDERER)
    sub.add_middleware(EchoRequestId, header="request-id")
    return sub


async def _get(file_id: str, service: FileService) -> FileRecord:
    """The file an Anthropic id names; not found in the id the client sent."""
    try:
        return await service.get_file(from_anthropic_id(file_id) or "")
    except FileNotFound:
        raise FileNotFound(file_id) from None


async def _listed_by_id(wanted: list[str], service: FileService) -> FilePage:
    """`ids[]`: those files, in the order asked, silently dropping unknown or deleted ids; one page."""
    if len(wanted) > MAX_IDS:
        raise InvalidRequest(f"ids: List should have at most {MAX_IDS} items, not {len(wanted)}.")
    records = []
    for file_id in dict.fromkeys(wanted):
        try:
            records.append(await _get(file_id, service))
        except FileNotFound:
            continue
    return _page(records, False, service, forward=True)


def _page(records: list[FileRecord], has_more: bool, service: FileService, *, forward: bool) -> FilePage:
    data = [_metadata(r, service) for r in records]
    first_id, last_id = (data[0].id, data[-1].id) if data else (None, None)
    next_page = "page_" + records[-1].id.removeprefix("file-") if forward and has_more and records else None
    return FilePage(data=data, has_more=has_more, first_id=first_id, last_id=last_id, next_page=next_page)


def _metadata(record: FileRecord, service: FileService) -> FileMetadata:
    return FileMetadata.from_record(
        record, downloadable=service.may_download(record, _vendor_allows_download)
    )


def _vendor_allows_download(record: FileRecord) -> bool:
    """The real API only lets tool-made files be downloaded; every file here is an upload."""
    return False


def _cursor_id(value: str | None, param: str) -> str:
    core = from_anthropic_id(value or "")
    if core is None:
        raise InvalidRequest(f"{param}: Invalid file id {value!r}.", param=param)
    return core


def _page_cursor(value: str) -> str:
    match = _PAGE_CURSOR.fullmatch(value)
    if match is None:
        raise InvalidRequest(f"page: Invalid page cursor {value!r}.", param="page")
    return "file-" + match[1]


def _limit(raw: str | None, service: FileService) -> int:
    if raw is None or raw == "":
        return service.settings.anthropic_default_list_limit
    high = service.settings.anthropic_max_list_limit
    value = int(raw) if re.fullmatch(r"[0-9]{1,6}", raw) else 0
    if not 1 <= value <= high:
        raise InvalidRequest(f"limit: Input should be between 1 and {high}, got {raw!r}.", param="limit")
    return value
