"""`FileService`: the one place for the rules about files, called by every dialect.

Writes put the blob first (under a temporary name), then commit the row; a failure in between
removes the blob. Deletes remove the row first, then the blob, so a crash can leave at worst an
unreferenced blob, never a row without bytes.
"""

import contextlib
import copy
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass

from app import ids, purposes
from app.blobs import BlobNotFound, BlobStore, BlobStoreError, BlobWriter
from app.errors import (
    DownloadRefused,
    FileNotFound,
    InvalidRequest,
    NotFound,
    QuotaExceeded,
    StorageUnavailable,
)
from app.metadata.store import (
    DEFAULT_PROJECT,
    CursorNotFound,
    FileRecord,
    MetadataStore,
    Order,
    OverQuota,
    Quota,
)
from app.settings import DownloadPolicy, Settings

log = logging.getLogger("filedock.service")


@dataclass
class StagedBlob:
    """Bytes received into a temporary blob, not yet visible to anyone."""

    writer: BlobWriter
    key: str  # the blob key the bytes will be committed under
    size: int = 0
    checked_for: str | None = None  # the purpose whose content check already ran on the way in

    def discard(self) -> None:
        self.writer.abort()


def project_quota(settings: Settings) -> Quota:
    """Every project's quota unless `filedock projects set-quota` gave it its own."""
    return Quota(max_bytes=settings.project_max_bytes, max_files=settings.project_max_files)


class FileService:
    """The files of one project (`for_project`); the maintenance jobs use it across projects."""

    def __init__(
        self,
        settings: Settings,
        metadata: MetadataStore,
        blobs: BlobStore,
        clock: Callable[[], float] = time.time,
        project: str = DEFAULT_PROJECT,
    ) -> None:
        self.settings = settings
        self.metadata = metadata
        self.blobs = blobs
        self._clock = clock
        self.project = project

    def for_project(self, project: str) -> "FileService":
        """The same service, seeing only `project`'s files. Cheap: one per request."""
        scoped = copy.copy(self)
        scoped.project = project
        return scoped

    def now(self) -> int:
        return int(self._clock())

    async def receive(
        self, chunks: AsyncIterator[bytes], *, purpose: str | None, limit: int | None = None
    ) -> StagedBlob:
        """Stream a file into a temporary blob, stopping as soon as it crosses its size limit.

        With `purpose` known, the purpose's content check runs on the way in as well. `limit`
        replaces the purpose's size limit (Uploads and their Parts have their own).
        """
        limit = purposes.size_limit(purpose, self.settings) if limit is None else limit
        make_checker = purposes.content_checker(purpose, self.settings) if purpose else None
        checker = make_checker() if make_checker else None
        key = ids.new_blob_key()
        staged = StagedBlob(await self._writer(key), key)
        try:
            async for chunk in chunks:
                staged.size += len(chunk)
                if staged.size > limit:
                    raise purposes.too_large(purpose, limit)
                if checker:
                    checker.feed(chunk)
                await self._write(staged.writer, chunk)
            if checker:
                checker.finish()
            staged.checked_for = purpose
        except BaseException:
            staged.discard()
            raise
        return staged

    async def create_file(
        self,
        staged: StagedBlob,
        *,
        filename: str,
        purpose: str,
        expires_after: int | None,
        limit: int | None = None,
        mime_type: str | None = None,
        insert: Callable[[FileRecord], Awaitable[FileRecord]] | None = None,
    ) -> FileRecord:
        """Check a received file against its purpose and make it a File. Consumes `staged`.

        `insert` records the row instead of a plain insert (a completed Upload records its File
        and its own new state in one transaction).
        """
        try:
            limit = purposes.size_limit(purpose, self.settings) if limit is None else limit
            if staged.size > limit:
                raise purposes.too_large(purpose, limit)
            if staged.checked_for != purpose and purposes.content_checker(purpose, self.settings):
                # The content check runs while bytes stream in, so it needs the purpose first.
                raise InvalidRequest(
                    f"For purpose '{purpose}', send the 'purpose' field before the 'file' part.",
                    param="purpose",
                )
            now = self.now()
            lifetime = (
                expires_after if expires_after is not None else purposes.default_expiry_seconds(purpose)
            )
            record = FileRecord(
                id=ids.new_file_id(),
                filename=filename,
                purpose=purpose,
                bytes=staged.size,
                created_at=now,
                expires_at=now + lifetime if lifetime is not None else None,
                status="processed",
                status_details=None,
                mime_type=mime_type or purposes.guess_mime_type(filename),
                sha256="",  # known once the blob is committed
                blob_key=staged.key,
                project=self.project,
            )
            await self._commit(staged.writer, record.blob_key)
            record = dataclasses.replace(record, sha256=staged.writer.sha256_hex())
        except BaseException:
            staged.discard()
            raise
        return await self._insert_or_remove_blob(record, insert or self.metadata.insert_file)

    async def _insert_or_remove_blob(
        self, record: FileRecord, insert: Callable[[FileRecord], Awaitable[FileRecord]]
    ) -> FileRecord:
        try:
            return await self._insert_within_quota(record, insert)
        except OverQuota as exc:
            await self._delete_blob(record.blob_key)
            raise _quota_exceeded(exc) from None
        except BaseException:
            await self._delete_blob(record.blob_key)
            raise

    async def _insert_within_quota(
        self, record: FileRecord, insert: Callable[[FileRecord], Awaitable[FileRecord]]
    ) -> FileRecord:
        try:
            return await insert(record)
        except OverQuota:
            # Expired files are gone to clients but count until the sweeper takes them: take
            # this project's now, and try once more.
            if not await self._remove_expired(self.project):
                raise
        return await insert(record)

    async def check_room(self, size: int) -> None:
        """Refuse early a file that cannot fit the project's quota (an Upload declares its size
        up front: no point taking gigabytes of Parts first). Advisory: the authoritative check
        is the one that records the file."""
        usage = await self.metadata.usage(self.project)
        if not usage.has_room_for(size) and await self._remove_expired(self.project):
            usage = await self.metadata.usage(self.project)  # expired files no longer count
        if not usage.has_room_for(size):
            raise _quota_exceeded(OverQuota(usage, size))

    async def get_file(self, file_id: str) -> FileRecord:
        record = None
        if ids.is_valid_file_id(file_id):
            record = await self.metadata.get_file(self.project, file_id, self.now())
        if record is None:
            raise FileNotFound(file_id)
        return record

    async def list_files(
        self, *, purpose: str | None, after: str | None, limit: int, order: Order
    ) -> tuple[list[FileRecord], bool]:
        try:
            return await self.metadata.list_files(
                self.project, purpose=purpose, after=after, limit=limit, order=order, now=self.now()
            )
        except CursorNotFound:
            raise NotFound("Resource not found.", param="after") from None

    async def delete_file(self, file_id: str) -> FileRecord:
        record = None
        if ids.is_valid_file_id(file_id):
            record = await self.metadata.delete_file(self.project, file_id, self.now())
        if record is None:
            raise FileNotFound(file_id)
        await self._delete_blob(record.blob_key)
        return record

    async def get_downloadable(self, file_id: str) -> FileRecord:
        """The file, if its bytes may be downloaded under the download policy."""
        record = await self.get_file(file_id)
        policy = self.settings.download_policy
        if policy is DownloadPolicy.VENDOR and record.purpose in purposes.UNDOWNLOADABLE_PURPOSES:
            raise DownloadRefused(f"Not allowed to download files of purpose: {record.purpose}")
        return record

    async def open_blob(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """Bytes `start` up to `end` (exclusive) of a blob, opened before the first chunk is read."""
        try:
            return await self.blobs.open(key, start, end)
        except BlobNotFound:
            log.error("a row names blob %s, which is missing", key)
            raise StorageUnavailable("The file's bytes are missing from the blob store.") from None
        except BlobStoreError as exc:
            raise StorageUnavailable("The blob store is unavailable. Please retry.") from exc

    async def keep_blob(self, staged: StagedBlob) -> str:
        """Make a received blob permanent under a new key, for a caller that records it itself."""
        key = staged.key
        try:
            await self._commit(staged.writer, key)
        except BaseException:
            staged.discard()
            raise
        return key

    async def delete_blobs(self, keys: Iterable[str]) -> None:
        for key in keys:
            await self._delete_blob(key)

    async def sweep(self) -> None:
        """Remove expired files, stale temporaries and old tombstones. Safe to run concurrently."""
        await self._remove_expired()
        await self.metadata.purge_tombstones(self.now() - self.settings.tombstone_retention_seconds)
        removed = await self.blobs.remove_stale_temporaries(self.settings.stale_temp_seconds)
        if removed:
            log.info("removed %d abandoned temporary uploads", removed)

    async def _remove_expired(self, project: str | None = None) -> int:
        """Delete expired files (of one project, or all), rows then blobs; how many there were."""
        now, removed = self.now(), 0
        while expired := await self.metadata.take_expired(now, project=project):
            for record in expired:
                await self._delete_blob(record.blob_key)
            removed += len(expired)
        if removed:
            log.info("removed %d expired files", removed)
        return removed

    async def check_ready(self) -> None:
        await self.metadata.ping()
        try:
            await self.blobs.check_writable()
        except BlobStoreError as exc:
            raise StorageUnavailable(f"The blob store is not writable: {exc}") from exc

    async def _writer(self, key: str) -> BlobWriter:
        try:
            return await self.blobs.writer(key)
        except BlobStoreError as exc:
            raise StorageUnavailable("The blob store is unavailable. Please retry.") from exc

    async def _write(self, writer: BlobWriter, chunk: bytes) -> None:
        try:
            await writer.write(chunk)
        except BlobStoreError as exc:
            raise StorageUnavailable("The blob store could not store the file. Please retry.") from exc

    async def _commit(self, writer: BlobWriter, key: str) -> None:
        try:
            await writer.commit(key)
        except BlobStoreError as exc:
            raise StorageUnavailable("The blob store could not store the file. Please retry.") from exc

    async def _delete_blob(self, key: str) -> None:
        with contextlib.suppress(BlobStoreError):  # a leftover blob is debris for gc, not a failure
            await self.blobs.delete(key)


def _quota_exceeded(exc: OverQuota) -> QuotaExceeded:
    usage = exc.usage
    if usage.files + 1 > usage.max_files:
        return QuotaExceeded(
            f"Storage limit exceeded for this project: it holds {usage.files} files, the most "
            f"allowed is {usage.max_files}. Delete files to make room."
        )
    return QuotaExceeded(
        f"Storage limit exceeded for this project: {usage.bytes} of {usage.max_bytes} bytes are "
        f"used, and this file needs {exc.adding_bytes} more. Delete files to make room."
    )
