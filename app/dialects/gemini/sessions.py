"""`ResumableUploads`: sessions whose chunks arrive in order (Gemini's resumable upload protocol).

A session is an Upload of purpose `user_data` (so it shares the Uploads' table, lifetime,
sweeping and assembly in `app.core.uploads`); its unguessable id is the capability a client
holds in its upload URL. Each chunk must start where the last one ended. It streams into its
own blob and is recorded as a Part at its offset. Finalizing streams the Parts, in offset
order, into one File: memory stays bounded at any size.
"""

import dataclasses
import logging
from collections.abc import AsyncIterator

from app.core import ids
from app.core.errors import FileTooLarge, InvalidRequest, QuotaExceeded, UploadBusy, UploadNotFound
from app.core.policy import FilePolicy
from app.core.records import FileRecord, UploadRecord
from app.core.uploads import NewUpload, UploadService

log = logging.getLogger("filedock.gemini.sessions")
SESSION_PURPOSE = "user_data"


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
        new = NewUpload(filename, SESSION_PURPOSE, size, mime_type, file_expires_after=lifetime)
        return await self.uploads.create(new, max_bytes=self.files.settings.max_upload_bytes)

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
        async with self.files.staging() as staged:
            try:
                await staged.receive(chunks, FilePolicy(None, room))
            except FileTooLarge:
                raise InvalidRequest(
                    f"The chunk goes past the declared size of {upload.bytes} bytes."
                ) from None
            if staged.size == 0:
                return upload
            part = await self.uploads.add_part(upload, staged, at_offset=offset)
        if part is None:  # another chunk for this offset won, or the session closed meanwhile
            current = await self.uploads.open_for_parts(upload.id)
            raise InvalidRequest(
                f"Invalid X-Goog-Upload-Offset {offset}: "
                f"the upload has received {current.received_bytes} bytes."
            )
        return dataclasses.replace(upload, received_bytes=upload.received_bytes + part.bytes)

    async def finalize(self, upload: UploadRecord, policy: FilePolicy) -> FileRecord:
        """Assemble every chunk into the File; the session must hold exactly its declared bytes."""
        if upload.received_bytes != upload.bytes:
            raise InvalidRequest(
                f"Cannot finalize: received {upload.received_bytes} of the {upload.bytes} bytes declared."
            )
        parts = await self.store.parts_in_id_order(upload.id)
        if not await self.store.claim(upload.id, self.files.now()):
            raise UploadBusy(f"Upload {upload.id} is being finalized by another request. Retry shortly.")
        try:
            return await self.uploads.assemble(upload, parts, None, policy, mime_type=upload.mime_type)
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
