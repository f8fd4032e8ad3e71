"""Read Anthropic's `POST /v1/files` multipart body: a `file` part, optionally `expires_in_seconds`.

The file streams into the blob store as it arrives. The filename keeps only its last path
component; an absent or empty one becomes `unnamed` plus the extension of the mime type.
"""

import mimetypes
import re

from fastapi import Request

from app.core.errors import InvalidRequest
from app.core.files import FileService, NewFile, Staged
from app.core.policy import FilePolicy, check_filename, check_mime_type, display_filename, guess_mime_type
from app.core.records import FileRecord
from app.http.multipart import (
    FormReader,
    Part,
    boundary_of,
    read_form,
    refuse_form_over_quota,
    refuse_oversized_form,
)

STORED_PURPOSE = "user_data"  # how the other dialects see a file uploaded here
GENERIC_TYPES = ("", "application/octet-stream")


async def create_file_from_form(request: Request, service: FileService) -> FileRecord:
    limit = service.settings.anthropic_max_file_bytes
    refusal = f"Request exceeds the maximum allowed size of {limit} bytes."
    refuse_oversized_form(request.headers.get("content-length"), limit, refusal)
    boundary = boundary_of(request.headers.get("content-type"))
    await refuse_form_over_quota(request.headers.get("content-length"), service)
    form = FormReader(request.stream(), boundary, max_parts=service.settings.max_form_parts)
    async with service.staging() as staged:
        fields, new = await _read_form(form, staged, service, limit)
        if new is None:
            raise InvalidRequest("file: Field required")
        expires = _expires_in_seconds(fields.get("expires_in_seconds"), service)
        policy = FilePolicy(STORED_PURPOSE, limit)
        return await service.commit_file(staged, policy, NewFile(new.filename, new.mime_type, expires))


async def _read_form(
    form: FormReader, staged: Staged, service: FileService, limit: int
) -> tuple[dict[str, str], NewFile | None]:
    new: NewFile | None = None

    async def receive(part: Part, _fields: dict[str, str]) -> None:
        nonlocal new
        mime_type = _mime_type(part)
        # Checked before a byte is stored, so a refused name leaves nothing behind.
        filename = check_filename(_filename(part.filename, mime_type), service.settings.max_filename_bytes)
        await staged.receive(form.chunks(), FilePolicy(None, limit))
        new = NewFile(filename, mime_type)

    second = InvalidRequest("file: Expected exactly one file.")
    fields, _ = await read_form(form, receive, second_file=second)
    return fields, new


def _mime_type(part: Part) -> str:
    declared = (part.content_type or "").split(";")[0].strip().lower()
    if declared not in GENERIC_TYPES:
        return check_mime_type(declared, param="file")
    return guess_mime_type(display_filename(part.filename, default=""))


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
