"""`UploadService`: a large file sent in pieces, then assembled into one File.

Two APIs share it: OpenAI Uploads (Parts in any order, listed at completion) and Gemini's
resumable sessions (`app.dialects.gemini.sessions`: chunks at increasing offsets). An Upload
is `pending` until it is completed, cancelled or expired; all three are final. Each piece
streams into its own blob. `assemble` streams the pieces, in order, through one staging into
a new File under the caller's `FilePolicy`, so memory stays bounded whatever the file's size.
Cancel, expiry and completion drop every piece's row and blob: nothing is left behind.

While one request completes an Upload it is `completing` (shown as `pending`), so no Part,
cancel or expiry can pull its Parts away mid-assembly.
"""

import copy
import dataclasses
import hashlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass

from app.core import ids
from app.core.errors import ClaimLost, FileDockError, FileTooLarge, InvalidRequest, UploadBusy, UploadNotFound
from app.core.files import FileService, NewFile, Staged
from app.core.policy import FilePolicy, check_filename, display_filename
from app.core.records import Event, FileRecord, PartRecord, UploadRecord
from app.metadata.uploads_store import UploadStore
from app.settings import Settings

log = logging.getLogger("filedock.uploads")
PolicyFor = Callable[[UploadRecord], FilePolicy]  # the dialect's policy for an Upload's File
MAX_PARTS_PER_COMPLETE = 10_000


@dataclass(frozen=True)
class UploadResult:
    upload: UploadRecord
    file: FileRecord | None


@dataclass(frozen=True)
class NewUpload:
    filename: str
    purpose: str
    bytes: int
    mime_type: str
    file_expires_after: int | None


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

    async def create(self, new: NewUpload, *, max_bytes: int) -> UploadRecord:
        """Open an Upload of exactly `new.bytes` bytes, refused above `max_bytes` or the quota."""
        limit = self.settings.max_filename_bytes
        filename = check_filename(display_filename(new.filename), limit, param="filename")
        _check_declared_bytes(new.bytes, max_bytes)
        await self.files.check_room(new.bytes)
        now = self.files.now()
        record = UploadRecord(
            id=ids.new_upload_id(),
            filename=filename,
            purpose=new.purpose,
            bytes=new.bytes,
            mime_type=new.mime_type,
            created_at=now,
            expires_at=now + self.settings.upload_lifetime_seconds,
            status="pending",
            file_expires_after=new.file_expires_after,
            project=self.files.project,
        )
        await self.store.insert_upload(record)
        return record

    async def open_for_parts(self, upload_id: str) -> UploadRecord:
        """The Upload, if it takes Parts now; checked before any byte of a Part is read."""
        upload = await self._get(upload_id)
        _require_pending(upload)
        return upload

    async def receive_part(self, upload: UploadRecord, staged: Staged, chunks: AsyncIterator[bytes]) -> None:
        """Stream a Part into `staged`, stopping at the Part limit or the Upload's room."""
        part_limit = self.settings.max_upload_part_bytes
        room = upload.bytes - upload.received_bytes
        try:
            await staged.receive(chunks, FilePolicy(None, min(part_limit, room)))
        except FileTooLarge:
            if room < part_limit:
                raise _overfills(upload) from None
            raise InvalidRequest(
                f"Part is too large: over {part_limit} bytes. Each Part can be at most "
                f"{part_limit // (1024 * 1024)} MB ({part_limit} bytes).",
                param="data",
                code="file_too_large",
            ) from None

    async def add_part(
        self, upload: UploadRecord, staged: Staged, *, at_offset: int | None = None
    ) -> PartRecord | None:
        """Keep a received piece as the Upload's Part; None when the Upload could not take it
        (closed meanwhile, or a parallel piece took its room or its offset): its blob is gone
        again. A piece `at_offset` must start exactly there, and its id sorts by offset."""
        now = self.files.now()
        key = await staged.keep()
        part = PartRecord(ids.new_part_id(at_offset), upload.id, staged.size, now, key)
        stored = False
        try:
            stored = await self.store.add_part(part, now, at_offset=at_offset)
        finally:
            if not stored:
                await self.files.delete_blobs([key])
        return part if stored else None

    async def add_listed_part(self, upload: UploadRecord, staged: Staged) -> PartRecord:
        """An OpenAI Part: kept, or refused with the reason the Upload gives now."""
        part = await self.add_part(upload, staged)
        if part is None:
            current = await self._get(upload.id)
            _require_pending(current)
            raise _overfills(current)
        return part

    async def complete(
        self, upload_id: str, part_ids: Sequence[str], md5: str | None, policy: PolicyFor
    ) -> UploadResult:
        md5 = md5.lower() if md5 is not None else None
        upload = await self._get(upload_id)
        if upload.status == "completed":
            return await self._replay(upload, part_ids, md5)
        _require_pending(upload)
        parts = await self._listed_parts(upload, part_ids)
        if not await self.store.claim(upload.id, self.files.now()):
            return await self._after_lost_claim(upload_id, part_ids, md5)
        try:
            file = await self.assemble(upload, parts, md5, policy(upload))
        except BaseException:
            await self.store.release(upload.id)  # a failed completion may be retried
            raise
        done = dataclasses.replace(
            upload, status="completed", file_id=file.id, part_ids=tuple(part_ids), md5=md5
        )
        return UploadResult(done, file)

    async def list_pending(self, *, after: str | None, limit: int) -> list[tuple[UploadRecord, int]]:
        """This project's open Uploads, oldest first, each with its number of Parts."""
        if after is not None and not ids.is_valid_upload_id(after):
            raise UploadNotFound(after)
        return await self.store.list_pending(self.files.project, self.files.now(), after=after, limit=limit)

    async def cancel(self, upload_id: str) -> UploadRecord:
        upload = await self._get(upload_id)
        if upload.status != "cancelled":
            _require_pending(upload)
            keys = await self.store.cancel(upload.id, self.files.now())
            if keys is None:  # something else finished it first: answer from its new state
                return await self._cancelled_meanwhile(upload_id)
            await self.files.delete_blobs(keys)
        return dataclasses.replace(upload, status="cancelled")

    async def sweep(self) -> int:
        """Expire abandoned Uploads (freeing their Parts) and forget long-finished ones; how many
        expired."""
        now, expired = self.files.now(), 0
        while True:
            count, _ = await self._expire(now)
            if not count:
                break
            expired += count
            log.info("expired %d abandoned uploads", count)
        await self.store.purge(now - self.settings.upload_retention_seconds)
        return expired

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
        self,
        upload: UploadRecord,
        parts: list[PartRecord],
        md5: str | None,
        policy: FilePolicy,
        *,
        mime_type: str | None = None,
    ) -> FileRecord:
        """Stream the pieces of a claimed Upload into a new File under `policy`, checking md5.
        `mime_type` None: guessed from the filename."""
        digest = hashlib.md5(usedforsecurity=False) if md5 is not None else None
        dropped: list[str] = []

        async def record(file: FileRecord, events: Sequence[Event]) -> FileRecord:
            stored, keys = await self.store.finish(upload.id, file, [p.id for p in parts], md5, events)
            dropped.extend(keys)
            return stored

        async with self.files.staging() as staged:
            exactly_declared = dataclasses.replace(policy, max_bytes=upload.bytes)
            await staged.receive(self._concatenate(parts, digest), exactly_declared)
            if digest is not None and md5 != digest.hexdigest():
                raise InvalidRequest(
                    f"The md5 of the uploaded bytes ({digest.hexdigest()}) does not match "
                    f"the provided md5 ({md5}).",
                    param="md5",
                )
            new = NewFile(upload.filename, mime_type, upload.file_expires_after)
            try:
                file = await self.files.commit_file(staged, policy, new, insert=record)
            except ClaimLost:
                raise InvalidRequest(f"Upload {upload.id} has expired.") from None
        await self.files.delete_blobs(dropped)
        return file

    async def _concatenate(
        self, parts: list[PartRecord], digest: "hashlib._Hash | None"
    ) -> AsyncIterator[bytes]:
        for part in parts:
            async for chunk in await self.files.open_blob(part.blob_key, owner=f"part {part.id}"):
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


def _check_declared_bytes(declared: int, limit: int) -> None:
    if declared < 0:
        raise InvalidRequest(
            "Invalid 'bytes': integer below minimum value. "
            f"Expected a value >= 0, but got {declared} instead.",
            param="bytes",
            code="integer_below_min_value",
        )
    if declared > limit:
        raise InvalidRequest(
            "Invalid 'bytes': integer above maximum value. "
            f"Expected a value <= {limit}, but got {declared} instead.",
            param="bytes",
            code="integer_above_max_value",
        )


def _overfills(upload: UploadRecord) -> InvalidRequest:
    return InvalidRequest(
        f"Adding this Part would exceed the Upload size of {upload.bytes} bytes.", param="data"
    )
