"""OpenAI Uploads routes: parse the wire request, call `UploadService`, return a wire model."""

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from app.core.errors import InvalidRequest
from app.core.policy import FilePolicy, check_mime_type, display_filename
from app.core.records import UploadRecord
from app.core.uploads import NewUpload, UploadService
from app.dialects.openai import purposes
from app.dialects.openai.files_router import ServiceDep, authorized_service
from app.dialects.openai.json_body import (
    invalid_type,
    json_object,
    optional_str,
    query_limit,
    required,
    string_list,
)
from app.dialects.openai.part_form import add_part_from_form
from app.dialects.openai.wire import (
    ErrorBody,
    PendingUploadList,
    PendingUploadObject,
    UploadObject,
    UploadPartObject,
)

MAX_PENDING_LIST_LIMIT = 1000


async def get_uploads(request: Request, files: ServiceDep) -> UploadService:
    uploads: UploadService = request.app.state.uploads
    return uploads.for_project(files.project)


UploadsDep = Annotated[UploadService, Depends(get_uploads)]

router = APIRouter(
    dependencies=[Depends(authorized_service)],
    responses={code: {"model": ErrorBody} for code in (400, 401, 404, 409, 413, 415, 503)},
)


@router.post("/uploads", response_model=UploadObject)
async def create_upload(request: Request, uploads: UploadsDep) -> UploadObject:
    body = await json_object(request)
    new = NewUpload(
        filename=required(body, "filename", str),
        purpose=purposes.check_purpose(required(body, "purpose", str)),
        bytes=required(body, "bytes", int),
        mime_type=_mime_type(required(body, "mime_type", str)),
        file_expires_after=_expires_after(body.get("expires_after")),
    )
    purposes.check_extension(new.purpose, display_filename(new.filename), uploads.settings)
    limit = purposes.upload_policy(new.purpose, uploads.settings, new.filename).max_bytes
    return UploadObject.from_records(await uploads.create(new, max_bytes=limit), None)


@router.get("/uploads", response_model=PendingUploadList)
async def list_pending_uploads(
    uploads: UploadsDep, after: str | None = None, limit: str | None = None
) -> PendingUploadList:
    """FileDock's extension (OpenAI has no such route): the caller's pending Uploads, oldest
    first, with the bytes their Parts hold so far, so a client can find and cancel abandoned ones."""
    size = query_limit(limit, default=MAX_PENDING_LIST_LIMIT, most=MAX_PENDING_LIST_LIMIT)
    listed = await uploads.list_pending(after=after or None, limit=size + 1)
    data = [PendingUploadObject.from_pending(upload, count) for upload, count in listed[:size]]
    return PendingUploadList(data=data, has_more=len(listed) > size)


@router.post("/uploads/{upload_id}/parts", response_model=UploadPartObject)
async def add_upload_part(upload_id: str, request: Request, uploads: UploadsDep) -> UploadPartObject:
    return UploadPartObject.from_record(await add_part_from_form(request, upload_id, uploads))


@router.post("/uploads/{upload_id}/complete", response_model=UploadObject)
async def complete_upload(upload_id: str, request: Request, uploads: UploadsDep) -> UploadObject:
    body = await json_object(request)
    result = await uploads.complete(upload_id, _part_ids(body), optional_str(body, "md5"), _policy(uploads))
    return UploadObject.from_records(result.upload, result.file)


@router.post("/uploads/{upload_id}/cancel", response_model=UploadObject)
async def cancel_upload(upload_id: str, uploads: UploadsDep) -> UploadObject:
    # The SDK sends Content-Type: application/json with an empty body: never parse it.
    return UploadObject.from_records(await uploads.cancel(upload_id), None)


def _policy(uploads: UploadService) -> Callable[[UploadRecord], FilePolicy]:
    return lambda upload: purposes.upload_policy(upload.purpose, uploads.settings, upload.filename)


def _mime_type(value: str) -> str:
    check_mime_type(value)
    if not value.strip():
        # Loose on purpose: the SDK's own example passes "pdf"; the filename decides the format.
        raise InvalidRequest("Invalid 'mime_type': must not be empty.", param="mime_type")
    return value


def _part_ids(body: dict[str, Any]) -> list[str]:
    return string_list("part_ids", required(body, "part_ids", list))


def _expires_after(value: object) -> int | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise invalid_type("expires_after", "an object", value)
    return purposes.check_expires_after(value.get("anchor"), value.get("seconds"))
