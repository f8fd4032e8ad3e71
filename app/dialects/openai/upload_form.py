"""Read `POST /files`' multipart body: fields, and the file streamed into the blob store.

Field order does not matter. When `purpose` (and `expires_after[…]`) come before the `file`
part, as the Python SDK sends them, every check that needs no bytes runs before the first byte
is stored, and the purpose's content check runs while the bytes stream in. When the file comes
first (openai-node sends parts in the order of the object's keys), its bytes stream in under
the global limits, and the purpose's rules run once the form is read: the content check then
reads the kept blob back before any row names it. Validation order (spec §2.2): purpose, file,
expires_after, extension, size, content.
"""

from dataclasses import dataclass

from fastapi import Request

from app.core.errors import InvalidRequest
from app.core.files import FileService, NewFile, Staged
from app.core.policy import FilePolicy, check_filename, display_filename
from app.core.records import FileRecord
from app.dialects.openai import purposes
from app.http.bodies import parse_client_json
from app.http.multipart import (
    FormReader,
    Part,
    boundary_of,
    read_form,
    refuse_form_over_quota,
    refuse_oversized_form,
)
from app.settings import Settings


async def create_file_from_form(request: Request, service: FileService) -> FileRecord:
    settings = service.settings
    refuse_oversized_form(
        request.headers.get("content-length"),
        settings.max_file_bytes,
        f"Request body is too large: {request.headers.get('content-length')} bytes. Files can be at "
        f"most {settings.max_file_bytes} bytes.",
    )
    boundary = boundary_of(request.headers.get("content-type"))
    await refuse_form_over_quota(request.headers.get("content-length"), service)
    form = FormReader(request.stream(), boundary, max_parts=settings.max_form_parts)
    async with service.staging() as staged:
        try:
            checked = await _read_form(form, staged, service)
        except InvalidRequest:
            # Read (and drop) the rest of the body, so the client gets our 400 instead of a reset
            # connection, which the SDK would retry.
            await form.discard_rest(max_bytes=settings.max_file_bytes)
            raise
        new = NewFile(checked.filename, expires_after=checked.expires_after)
        return await service.commit_file(staged, checked.policy, new)


@dataclass(frozen=True)
class _FileRequest:
    """The form's fields, checked in the spec's order: purpose, file, expires_after, extension."""

    filename: str
    expires_after: int | None
    policy: FilePolicy


def _checked(fields: dict[str, str], filename: str | None, settings: Settings) -> _FileRequest:
    purpose = purposes.check_purpose(fields.get("purpose"))
    if filename is None:
        raise InvalidRequest(
            "Missing required parameter: 'file'.", param="file", code="missing_required_parameter"
        )
    expires_after = _expires_after(fields)
    purposes.check_extension(purpose, filename, settings)
    return _FileRequest(filename, expires_after, purposes.file_policy(purpose, settings, filename))


async def _read_form(form: FormReader, staged: Staged, service: FileService) -> _FileRequest:
    """Read the form, the file into `staged`. The fields are checked once: before the first byte
    when they come first, else (or when more fields follow the file) once the form is read."""
    settings = service.settings
    filename: str | None = None
    checked: tuple[dict[str, str], _FileRequest] | None = None

    async def receive(part: Part, fields: dict[str, str]) -> None:
        nonlocal filename, checked
        filename = check_filename(display_filename(part.filename), settings.max_filename_bytes)
        policy = purposes.file_policy(None, settings, filename)  # the purpose may come later
        if "purpose" in fields:
            checked = (dict(fields), _checked(fields, filename, settings))
            policy = checked[1].policy
        await staged.receive(form.chunks(), policy)

    second = InvalidRequest("Expected exactly one 'file' part.", param="file")
    fields, _ = await read_form(form, receive, second_file=second)
    if checked is not None and checked[0] == fields:
        return checked[1]
    return _checked(fields, filename, settings)


def _expires_after(fields: dict[str, str]) -> int | None:
    """`expires_after[anchor]`/`[seconds]` as the SDK flattens it, or one JSON field."""
    if "expires_after" in fields:
        value = parse_client_json(fields["expires_after"], "'expires_after'", param="expires_after")
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
