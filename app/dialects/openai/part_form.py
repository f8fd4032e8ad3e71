"""Read `POST /uploads/{id}/parts`' multipart body: one `data` part streamed into a Part's blob.

The SDK sends the Part as field `data` with filename `upload`; the filename and the part's
Content-Type mean nothing and are ignored. The Upload is checked before a byte is stored.
"""

from fastapi import Request

from app.errors import InvalidRequest, NotFound, RequestTooLarge, UploadBusy
from app.metadata.uploads_store import PartRecord
from app.multipart import FORM_OVERHEAD_BYTES, FormReader, boundary_of, declares_more_than, discard_body
from app.service import StagedBlob
from app.uploads import UploadService


async def add_part_from_form(request: Request, upload_id: str, uploads: UploadService) -> PartRecord:
    part_limit = uploads.settings.max_upload_part_bytes
    _refuse_oversized_body(request, part_limit)
    body = request.stream()
    staged: StagedBlob | None = None
    try:
        upload = await uploads.open_for_parts(upload_id)
        boundary = boundary_of(request.headers.get("content-type"))
        form = FormReader(body, boundary, max_parts=uploads.settings.max_form_parts)
        async for part in form.parts():
            if part.name != "data":
                continue  # unknown fields are ignored (spec §1); their bytes are skipped
            if staged is not None:
                raise InvalidRequest("Expected exactly one 'data' part.", param="data")
            staged = await uploads.receive_part(upload, form.chunks())
        if staged is None:
            raise InvalidRequest(
                "Missing required parameter: 'data'.", param="data", code="missing_required_parameter"
            )
        ready, staged = staged, None  # add_part owns it from here
        return await uploads.add_part(upload, ready)
    except (InvalidRequest, NotFound, UploadBusy):
        # Read (and drop) the rest of the body, so the client gets our answer instead of a
        # reset connection, which the SDK would retry.
        await discard_body(body, part_limit + FORM_OVERHEAD_BYTES)
        raise
    finally:
        if staged is not None:
            staged.discard()


def _refuse_oversized_body(request: Request, part_limit: int) -> None:
    declared = request.headers.get("content-length")
    if declares_more_than(declared, part_limit):
        raise RequestTooLarge(
            f"Request body is too large: {declared} bytes. Parts can be at most {part_limit} bytes."
        )
