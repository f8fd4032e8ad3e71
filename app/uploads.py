"""`UploadService`: the rules of OpenAI Uploads (a large file sent as Parts, then assembled).

An Upload is `pending` until it is completed, cancelled or expired; all three are final. Each
Part streams into its own blob. Completing streams the listed Parts, in order, through
`FileService.receive` into a new File, so memory stays bounded whatever the file's size.
Cancel, expiry and completion drop every Part's row and blob: nothing is left behind.

While one request completes an Upload it is `completing` (shown as `pending`), so no Part,
cancel or expiry can pull its Parts away mid-assembly.
"""

import copy
import dataclasses
import hashlib
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from app import ids, purposes
from app.errors import FileDockError, FileTooLarge, InvalidRequest, UploadBusy, UploadNotFound
from app.headers import display_filename
from app.limits import check_filename, check_mime_type
from app.metadata.store import FileRecord
from app.metadata.uploads_store import ClaimLost, PartRecord, UploadRecord, UploadStore
from app.service import FileService, StagedBlob
from app.settings import Settings

log = logging.getLogger("filedock.uploads")
MAX_PARTS_PER_COMPLETE = 10_000


@dataclass(frozen=True)
class UploadResult:
    upload: UploadRecord
    file: FileRecord | None


class UploadService:
    def __init__(self, files: FileService, store: UploadStore) -> None:
        self.files = files
        self.store = store

    def for_project(self, project: str) -> "UploadService":
        """The same service, seeing only `project`'s Uploads."""
        scoped = copy.copy(self)
        scoped.files = self.files.for_project(project)
        return scoped

    @property
    def settings(self) -> Settings:
        return self.files.settings

    async def create(
        self, *, filename: str, purpose: str, bytes: int, mime_type: str, expires_after: int | None
    ) -> UploadRecord:
        purpose = purposes.check_purpose(purpose)
        limit = self.settings.max_filename_bytes
        filename = check_filename(display_filename(filename), limit, param="filename")
        self._check_declared_bytes(bytes, purpose)
        check_mime_type(mime_type)
        if not mime_type.strip():
            # Loose on purpose: the SDK's own example passes "pdf"; the filename decides the format.
            raise InvalidRequest("Invalid 'mime_type': must not be empty.", param="mime_type")
        purposes.check_extension(purpose, filename, self.settings)
        await self.files.check_room(bytes)
        now = self.files.now()
        record = UploadRecord(
            id=ids.new_upload_id(),
            filename=filename,
            purpose=purpose,
            bytes=bytes,
            mime_type=mime_type,
            created_at=now,
            expires_at=now + self.settings.upload_lifetime_seconds,
            status="pending",
            file_expires_after=expires_after,
            project=self.files.project,
        )
        await self.store.insert_upload(record)
        return record

    async def open_for_parts(self, upload_id: str) -> UploadRecord:
        """The Upload, if it takes Parts now; checked before any byte of a Part is read."""
        upload = await self._get(upload_id)
        _require_pending(upload)
        return upload

    async def receive_part(self, upload: UploadRecord, chunks: AsyncIterator[bytes]) -> StagedBlob:
        """Stream a Part into a temporary blob, stopping at the Part limit or the Upload's room."""
        part_limit = self.settings.max_upload_part_bytes
        room = upload.bytes - upload.received_bytes
        try:
            return await self.files.receive(chunks, purpose=None, limit=min(part_limit, room))
        except FileTooLarge:
            if room < part_limit:
                raise _overfills(upload) from None
            raise InvalidRequest(
                f"Part is too large: over {part_limit} bytes. Each Part can be at most "
                f"{part_limit // (1024 * 1024)} MB ({part_limit} bytes).",
                param="data",
                code="file_too_large",
            ) from None

    async def add_part(self, upload: UploadRecord, staged: StagedBlob) -> PartRecord:
        """Keep a received Part. Consumes `staged`; on refusal its blob is removed again."""
        now = self.files.now()
        key = await self.files.keep_blob(staged)
        part = PartRecord(ids.new_part_id(), upload.id, staged.size, now, key)
        stored = False
        try:
            stored = await self.store.add_part(part, now)
        finally:
            if not stored:
                await self.files.delete_blobs([key])
        if not stored:
            # Cancelled, expired or completed meanwhile, or a parallel Part took the room.
            current = await self._get(upload.id)
            _require_pending(current)
            raise _overfills(current)
        return part

    async def complete(self, upload_id: str, part_ids: Sequence[str], md5: str | None) -> UploadResult:
        md5 = md5.lower() if md5 is not None else None
        upload = await self._get(upload_id)
        if upload.status == "completed":
            return await self._replay(upload, part_ids, md5)
        _require_pending(upload)
        parts = await self._listed_parts(upload, part_ids)
        if not await self.store.claim(upload.id, self.files.now()):
            return await self._after_lost_claim(upload_id, part_ids, md5)
        try:
            file = await self.assemble(upload, parts, md5)
        except BaseException:
            await self.store.release(upload.id)  # a failed completion may be retried
            raise
        done = dataclasses.replace(
            upload, status="completed", file_id=file.id, part_ids=tuple(part_ids), md5=md5
        )
        return UploadResult(done, file)

    async def cancel(self, upload_id: str) -> UploadRecord:
        upload = await self._get(upload_id)
        if upload.status != "cancelled":
            _require_pending(upload)
            keys = await self.store.cancel(upload.id, self.files.now())
            if keys is None:  # something else finished it first: answer from its new state
                return await self._cancelled_meanwhile(upload_id)
            await self.files.delete_blobs(keys)
        return dataclasses.replace(upload, status="cancelled")

    async def sweep(self) -> None:
        """Expire abandoned Uploads (freeing their Parts) and forget long-finished ones."""
        now = self.files.now()
        while True:
            count, _ = await self._expire(now)
            if not count:
                break
            log.info("expired %d abandoned uploads", count)
        await self.store.purge(now - self.settings.upload_retention_seconds)

    async def _expire(self, now: int, upload_id: str | None = None) -> tuple[int, list[str]]:
        # A completion still running this long after expiry has died with its process.
        stuck_before = now - self.settings.stale_temp_seconds
        count, keys = await self.store.expire(now, stuck_before=stuck_before, upload_id=upload_id)
        await self.files.delete_blobs(keys)
        return count, keys

    async def _get(self, upload_id: str) -> UploadRecord:
        """The Upload, with a lapsed expiry applied now rather than at the sweeper's next round."""
        upload = await self.store.get_upload(upload_id) if ids.is_valid_upload_id(upload_id) else None
        if upload is None or upload.project != self.files.project:  # another project's: not here
            raise UploadNotFound(upload_id)
        if upload.status == "pending" and upload.expires_at <= self.files.now():
            await self._expire(self.files.now(), upload_id)
            upload = await self.store.get_upload(upload_id) or upload
        return upload

    def _check_declared_bytes(self, declared: int, purpose: str) -> None:
        if declared < 0:
            raise InvalidRequest(
                "Invalid 'bytes': integer below minimum value. "
                f"Expected a value >= 0, but got {declared} instead.",
                param="bytes",
                code="integer_below_min_value",
            )
        limit = self._size_limit(purpose)
        if declared > limit:
            raise InvalidRequest(
                "Invalid 'bytes': integer above maximum value. "
                f"Expected a value <= {limit}, but got {declared} instead.",
                param="bytes",
                code="integer_above_max_value",
            )

    def _size_limit(self, purpose: str) -> int:
        limit = self.settings.max_upload_bytes
        if purpose == "batch":  # the Batch API's own limit holds however the file arrives
            limit = min(limit, purposes.size_limit(purpose, self.settings))
        return limit

    async def _listed_parts(self, upload: UploadRecord, part_ids: Sequence[str]) -> list[PartRecord]:
        """The listed Parts in list order, once each, all of this Upload, adding up to its bytes."""
        if len(part_ids) > MAX_PARTS_PER_COMPLETE:
            raise InvalidRequest(f"At most {MAX_PARTS_PER_COMPLETE} part ids are allowed.", param="part_ids")
        seen: set[str] = set()
        for part_id in part_ids:
            if part_id in seen:
                raise InvalidRequest(f"Duplicate part id: {part_id}.", param="part_ids")
            seen.add(part_id)
        valid = [p for p in part_ids if ids.is_valid_part_id(p)]
        found = await self.store.parts_of(upload.id, valid) if valid else {}
        for part_id in part_ids:
            if part_id not in found:
                raise InvalidRequest(
                    f"Part {part_id} does not belong to Upload {upload.id}.", param="part_ids"
                )
        parts = [found[p] for p in part_ids]
        total = sum(p.bytes for p in parts)
        if total != upload.bytes:
            raise InvalidRequest(
                f"The Parts total {total} bytes, but the Upload was created with bytes={upload.bytes}.",
                param="part_ids",
            )
        return parts

    async def assemble(
        self, upload: UploadRecord, parts: list[PartRecord], md5: str | None, *, mime_type: str | None = None
    ) -> FileRecord:
        """Stream the Parts of a claimed Upload into a new File, checking md5 (if given) and purpose."""
        digest = hashlib.md5(usedforsecurity=False) if md5 is not None else None
        chunks = self._concatenate(parts, digest)
        staged = await self.files.receive(chunks, purpose=upload.purpose, limit=upload.bytes)
        if digest is not None and md5 != digest.hexdigest():
            staged.discard()
            raise InvalidRequest(
                f"The md5 of the uploaded bytes ({digest.hexdigest()}) does not match "
                f"the provided md5 ({md5}).",
                param="md5",
            )
        dropped: list[str] = []

        async def record(file: FileRecord) -> FileRecord:
            stored, keys = await self.store.finish(upload.id, file, [p.id for p in parts], md5)
            dropped.extend(keys)
            return stored

        try:
            file = await self.files.create_file(
                staged,
                filename=upload.filename,
                purpose=upload.purpose,
                expires_after=upload.file_expires_after,
                limit=self._size_limit(upload.purpose),
                mime_type=mime_type,
                insert=record,
            )
        except ClaimLost:
            raise InvalidRequest(f"Upload {upload.id} has expired.") from None
        await self.files.delete_blobs(dropped)
        return file

    async def _concatenate(
        self, parts: list[PartRecord], digest: "hashlib._Hash | None"
    ) -> AsyncIterator[bytes]:
        for part in parts:
            async for chunk in await self.files.open_blob(part.blob_key):
                if digest is not None:  # md5 runs on the event loop: only when the client asks
                    digest.update(chunk)
                yield chunk

    async def _replay(self, upload: UploadRecord, part_ids: Sequence[str], md5: str | None) -> UploadResult:
        """A repeated complete (a retry after a lost response) gets the same answer."""
        if upload.part_ids != tuple(part_ids) or upload.md5 != md5:
            raise InvalidRequest(f"Upload {upload.id} is already completed.")
        assert upload.file_id is not None  # a completed Upload always names its File
        return UploadResult(upload, await self.files.get_file(upload.file_id))

    async def _after_lost_claim(
        self, upload_id: str, part_ids: Sequence[str], md5: str | None
    ) -> UploadResult:
        upload = await self._get(upload_id)
        if upload.status == "completed":
            return await self._replay(upload, part_ids, md5)
        _require_pending(upload)
        raise UploadBusy(f"Upload {upload_id} is changing state. Retry shortly.")

    async def _cancelled_meanwhile(self, upload_id: str) -> UploadRecord:
        upload = await self._get(upload_id)
        if upload.status == "cancelled":
            return upload
        _require_pending(upload)
        raise UploadBusy(f"Upload {upload_id} is changing state. Retry shortly.")


def _require_pending(upload: UploadRecord) -> None:
    refusal = _refusal(upload)
    if refusal is not None:
        raise refusal


def _refusal(upload: UploadRecord) -> FileDockError | None:
    return {
        "completed": InvalidRequest(f"Upload {upload.id} is already completed."),
        "cancelled": InvalidRequest(f"Upload {upload.id} was cancelled."),
        "expired": InvalidRequest(f"Upload {upload.id} has expired."),
        "completing": UploadBusy(f"Upload {upload.id} is being completed by another request. Retry shortly."),
    }.get(upload.status)


def _overfills(upload: UploadRecord) -> InvalidRequest:
    return InvalidRequest(
        f"Adding this Part would exceed the Upload size of {upload.bytes} bytes.", param="data"
    )
