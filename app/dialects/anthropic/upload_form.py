"""Read Anthropic's `POST /v1/files` multipart body: a `file` part, optionally `expires_in_seconds`.

The file streams into the blob store as it arrives. The filename keeps only its last path
component; an absent or empty one becomes `unnamed` plus the extension of the mime type.
"""

import dataclasses
import mimetypes
import re

from fastapi import Request

from app import purposes
from app.errors import InvalidRequest, RequestTooLarge
from app.headers import display_filename
from app.limits import check_filename, check_mime_type
from app.metadata.store import FileRecord
from app.multipart import FormReader, Part, boundary_of, declares_more_than, read_form
from app.service import FileService, StagedBlob

STORED_PURPOSE = "user_data"  # how the other dialects see a file uploaded here
GENERIC_TYPES = ("", "application/octet-stream")


@dataclasses.dataclass
class _Upload:
    staged: StagedBlob
    filename: str
    mime_type: str

    def discard(self) -> None:
        self.staged.discard()


async def create_file_from_form(request: Request, service: FileService) -> FileRecord:
    limit = service.settings.anthropic_max_file_bytes
    if declares_more_than(request.headers.get("content-length"), limit):
        raise RequestTooLarge(f"Request exceeds the maximum allowed size of {limit} bytes.")
    boundary = boundary_of(request.headers.get("content-type"))
    form = FormReader(request.stream(), boundary, max_parts=service.settings.max_form_parts)
    fields, upload = await _read_form(form, service, limit)
    try:
        if upload is None:
            raise InvalidRequest("file: Field required")
        expires = _expires_in_seconds(fields.get("expires_in_seconds"), service)
    except BaseException:
        if upload is not None:
            upload.staged.discard()
        raise

    return await service.create_file(
        upload.staged,
        filename=upload.filename,
        purpose=STORED_PURPOSE,
        expires_after=expires,
        limit=limit,
        mime_type=upload.mime_type,
    )


async def _read_form(
    form: FormReader, service: FileService, limit: int
) -> tuple[dict[str, str], _Upload | None]:
    async def receive(part: Part, _fields: dict[str, str]) -> _Upload:
        mime_type = _mime_type(part)
        # Checked before a byte is stored, so a refused name leaves nothing behind.
        filename = check_filename(_filename(part.filename, mime_type), service.settings.max_filename_bytes)
        staged = await service.receive(form.chunks(), purpose=None, limit=limit)
        return _Upload(staged, filename, mime_type)

    return await read_form(form, receive, second_file=InvalidRequest("file: Expected exactly one file."))


def _mime_type(part: Part) -> str:
    declared = (part.content_type or "").split(";")[0].strip().lower()
    if declared not in GENERIC_TYPES:
        return check_mime_type(declared, param="file")
    return purposes.guess_mime_type(display_filename(part.filename, default=""))


def _filename(raw: str | None, mime_type: str) -> str:
    name = display_filename(raw, default="")
    if name:
        return name
    return "unnamed" + (mimetypes.guess_extension(mime_type, strict=False) or "")


def _expires_in_seconds(raw: str | None, service: FileService) -> int | None:
    if raw is None:
        return None
    low = service.settings.anthropic_min_expires_in_seconds
    high = service.settings.anthropic_max_expires_in_seconds
    value = int(raw) if re.fullmatch(r"[0-9]{1,12}", raw.strip()) else -1
    if not low <= value <= high:
        raise InvalidRequest(f"expires_in_seconds: Input should be between {low} and {high}, got {raw!r}.")
    return value
