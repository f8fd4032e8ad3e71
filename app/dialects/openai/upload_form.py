"""Read `POST /files`' multipart body: fields, then the file streamed into the blob store.

The SDK sends `purpose` and `expires_after[…]` before the `file` part, so the checks that need
no bytes run before the first byte is stored. Validation order (spec §2.2): purpose, file,
expires_after, extension, size, content.
"""

import json
from dataclasses import dataclass

from fastapi import Request

from app import purposes
from app.errors import InvalidRequest, RequestTooLarge
from app.headers import display_filename
from app.limits import check_filename
from app.metadata.store import FileRecord
from app.multipart import FormReader, Part, boundary_of, declares_more_than, read_form
from app.service import FileService, StagedBlob


async def create_file_from_form(request: Request, service: FileService) -> FileRecord:
    _refuse_oversized_body(request, service)
    boundary = boundary_of(request.headers.get("content-type"))
    form = FormReader(request.stream(), boundary, max_parts=service.settings.max_form_parts)
    try:
        fields, staged, filename = await _read_form(form, service)
    except InvalidRequest:
        # Read (and drop) the rest of the body, so the client gets our 400 instead of a reset
        # connection, which the SDK would retry.
        await form.discard_rest(max_bytes=service.settings.max_file_bytes)
        raise
    try:
        purpose = purposes.check_purpose(fields.get("purpose"))
        if staged is None:
            raise InvalidRequest(
                "Missing required parameter: 'file'.", param="file", code="missing_required_parameter"
            )
        expires_after = _expires_after(fields)
        purposes.check_extension(purpose, filename, service.settings)
    except BaseException:
        if staged is not None:
            staged.discard()
        raise
    return await service.create_file(staged, filename=filename, purpose=purpose, expires_after=expires_after)


@dataclass
class _File:
    staged: StagedBlob
    filename: str

    def discard(self) -> None:
        self.staged.discard()


async def _read_form(form: FormReader, service: FileService) -> tuple[dict[str, str], StagedBlob | None, str]:
    """Text fields, the file received into a temporary blob (if any part is `file`), its name."""

    async def receive(part: Part, fields: dict[str, str]) -> _File:
        filename = check_filename(display_filename(part.filename), service.settings.max_filename_bytes)
        known_purpose = _checks_before_bytes(fields, filename, service)
        return _File(await service.receive(form.chunks(), purpose=known_purpose), filename)

    second = InvalidRequest("Expected exactly one 'file' part.", param="file")
    fields, file = await read_form(form, receive, second_file=second)
    return fields, file.staged if file else None, file.filename if file else "upload"


def _refuse_oversized_body(request: Request, service: FileService) -> None:
    declared = request.headers.get("content-length")
    if declares_more_than(declared, service.settings.max_file_bytes):
        raise RequestTooLarge(
            f"Request body is too large: {declared} bytes. Files can be at most "
            f"{service.settings.max_file_bytes} bytes."
        )


def _checks_before_bytes(fields: dict[str, str], filename: str, service: FileService) -> str | None:
    """Run every check that needs no bytes; the purpose if it is known yet."""
    if "purpose" not in fields:
        return None  # a client that sends the file first: checked once the form is read
    purpose = purposes.check_purpose(fields["purpose"])
    _expires_after(fields)
    purposes.check_extension(purpose, filename, service.settings)
    return purpose


def _expires_after(fields: dict[str, str]) -> int | None:
    """`expires_after[anchor]`/`[seconds]` as the SDK flattens it, or one JSON field."""
    if "expires_after" in fields:
        try:
            value = json.loads(fields["expires_after"])
        except ValueError:
            value = None
        if not isinstance(value, dict):
            raise InvalidRequest(
                "Invalid 'expires_after': expected an object with 'anchor' and 'seconds'.",
                param="expires_after",
            )
        return purposes.check_expires_after(value.get("anchor"), value.get("seconds"))
    anchor = fields.get("expires_after[anchor]")
    seconds = fields.get("expires_after[seconds]")
    if anchor is None and seconds is None:
        return None
    return purposes.check_expires_after(anchor, seconds)
