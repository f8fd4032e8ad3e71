"""`ResumableUploads`: sessions whose chunks arrive in order (Gemini's resumable upload protocol).

A session is an OpenAI Upload of purpose `user_data` (so it shares its table, lifetime and
sweeping); its unguessable id is the capability a client holds in its upload URL. Each chunk
must start where the last one ended. It streams into its own blob and is recorded as a Part
whose id begins with its zero-padded offset, so ordering Parts by id orders them by offset.
Finalizing streams the Parts, in that order, into one File: memory stays bounded at any size.
"""

import dataclasses
import logging
from collections.abc import AsyncIterator

from app import ids
from app.errors import FileTooLarge, InvalidRequest, QuotaExceeded, UploadBusy, UploadNotFound
from app.metadata.store import FileRecord
from app.metadata.uploads_store import PartRecord, UploadRecord
from app.uploads import UploadService

log = logging.getLogger("filedock.resumable")
SESSION_PURPOSE = "user_data"
_OFFSET_DIGITS = 16


@dataclasses.dataclass(frozen=True)
class Session:
    """Where a session stands: the bytes declared and received, and its File once final."""

    upload: UploadRecord
    file: FileRecord | None = None

    @property
    def received(self) -> int:
        return self.upload.bytes if self.file is not None else self.upload.received_bytes


class ResumableUploads:
    def __init__(self, uploads: UploadService) -> None:
        self.uploads = uploads
        self.files = uploads.files
        self.store = uploads.store

    async def start(
        self, *, filename: str, mime_type: str, size: int, limit: int, lifetime: int | None
    ) -> UploadRecord:
        """Open a session for a file of exactly `size` bytes, refused above `limit`."""
        if size > limit:
            raise FileTooLarge(f"File is too large: {size} bytes. Maximum per file is {limit} bytes.")
        return await self.uploads.create(
            filename=filename,
            purpose=SESSION_PURPOSE,
            bytes=size,
            mime_type=mime_type,
            expires_after=lifetime,
        )

    def for_project(self, project: str) -> "ResumableUploads":
        return ResumableUploads(self.uploads.for_project(project))

    async def get(self, upload_id: str) -> tuple[Session, "ResumableUploads"]:
        """The session, final or open, and the service of the project that opened it (the session
        id is the capability: a chunk carries no API key). `UploadNotFound` if it never existed."""
        upload = await self.store.get_upload(upload_id) if ids.is_valid_upload_id(upload_id) else None
        if upload is None or upload.purpose != SESSION_PURPOSE:
            raise UploadNotFound(upload_id)
        owner = self.for_project(upload.project)
        if upload.status == "completed" and upload.file_id is not None:
            return Session(upload, await owner.files.get_file(upload.file_id)), owner
        return Session(await owner.uploads.open_for_parts(upload_id)), owner

    async def add_chunk(
        self, upload: UploadRecord, offset: int, chunks: AsyncIterator[bytes]
    ) -> UploadRecord:
        """Store one chunk starting at `offset`; returns the session with the chunk counted."""
        check_offset(upload, offset)
        room = upload.bytes - upload.received_bytes
        try:
            staged = await self.files.receive(chunks, purpose=None, limit=room)
        except FileTooLarge:
            raise InvalidRequest(f"The chunk goes past the declared size of {upload.bytes} bytes.") from None
        if staged.size == 0:
            staged.discard()
            return upload
        now = self.files.now()
        key = await self.files.keep_blob(staged)
        part_id = f"part_{offset:0{_OFFSET_DIGITS}d}{ids.new_blob_key()[:16]}"
        stored = False
        try:
            stored = await self.store.add_part(
                PartRecord(part_id, upload.id, staged.size, now, key), now, at_offset=offset
            )
        finally:
            if not stored:
                await self.files.delete_blobs([key])
        if not stored:  # another chunk for this offset won, or the session closed meanwhile
            current = await self.uploads.open_for_parts(upload.id)
            raise InvalidRequest(
                f"Invalid X-Goog-Upload-Offset {offset}: "
                f"the upload has received {current.received_bytes} bytes."
            )
        return dataclasses.replace(upload, received_bytes=upload.received_bytes + staged.size)

    async def finalize(self, upload: UploadRecord) -> FileRecord:
        """Assemble every chunk into the File; the session must hold exactly its declared bytes."""
        if upload.received_bytes != upload.bytes:
            raise InvalidRequest(
                f"Cannot finalize: received {upload.received_bytes} of the {upload.bytes} bytes declared."
            )
        parts = await self.store.parts_in_id_order(upload.id)
        if not await self.store.claim(upload.id, self.files.now()):
            raise UploadBusy(f"Upload {upload.id} is being finalized by another request. Retry shortly.")
        try:
            return await self.uploads.assemble(upload, parts, None, mime_type=upload.mime_type)
        except QuotaExceeded:
            # The reply says `final`: no client resumes this session, so free its bytes now.
            await self.store.release(upload.id)
            await self.uploads.cancel(upload.id)
            raise
        except BaseException:
            await self.store.release(upload.id)
            raise


def check_offset(upload: UploadRecord, offset: int) -> None:
    """A chunk must start exactly where the bytes received so far end."""
    if offset != upload.received_bytes:
        raise InvalidRequest(
            f"Invalid X-Goog-Upload-Offset {offset}: the upload has received {upload.received_bytes} bytes."
        )
