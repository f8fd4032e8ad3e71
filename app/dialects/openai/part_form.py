"""Read `POST /uploads/{id}/parts`' multipart body: one `data` part streamed into a Part's blob.

The SDK sends the Part as field `data` with filename `upload`; the filename and the part's
Content-Type mean nothing and are ignored. The Upload is checked before a byte is stored.
"""

from fastapi import Request

from app.core.errors import InvalidRequest, NotFound, UploadBusy
from app.core.records import PartRecord
from app.core.uploads import UploadService
from app.http.bodies import discard_body
from app.http.multipart import FORM_OVERHEAD_BYTES, FormReader, boundary_of, refuse_oversized_form


async def add_part_from_form(request: Request, upload_id: str, uploads: UploadService) -> PartRecord:
    part_limit = uploads.settings.max_upload_part_bytes
    declared = request.headers.get("content-length")
    refusal = f"Request body is too large: {declared} bytes. Parts can be at most {part_limit} bytes."
    refuse_oversized_form(declared, part_limit, refusal)
    body = request.stream()
    try:
        upload = await uploads.open_for_parts(upload_id)
        boundary = boundary_of(request.headers.get("content-type"))
        form = FormReader(body, boundary, max_parts=uploads.settings.max_form_parts)
        async with uploads.files.staging() as staged:
            received = False
            async for part in form.parts():
                if part.name != "data":
                    continue  # unknown fields are ignored (spec §1); their bytes are skipped
                if received:
                    raise InvalidRequest("Expected exactly one 'data' part.", param="data")
                await uploads.receive_part(upload, staged, form.chunks())
                received = True
            if not received:
                raise InvalidRequest(
                    "Missing required parameter: 'data'.", param="data", code="missing_required_parameter"
                )
            return await uploads.add_listed_part(upload, staged)
    except (InvalidRequest, NotFound, UploadBusy):
        # Read (and drop) the rest of the body, so the client gets our answer instead of a
        # reset connection, which the SDK would retry.
        await discard_body(body, part_limit + FORM_OVERHEAD_BYTES)
        raise
