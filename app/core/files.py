"""`FileService`: the one owner of creating, reading and deleting a file, for every dialect.

Creating a file is one path whatever the dialect or API: bytes stream into a `Staged` blob
(temporary, invisible), under a `FilePolicy` the dialect built; `commit_file` then makes the
blob permanent and records the row. Leaving a `staging()` block without keeping the blob
discards it, so no caller cleans up by hand. Once kept, a blob is removed again if its row
cannot be recorded. Deletes remove the row first, then the blob: a crash can leave at worst an
unreferenced blob (gc's work), never a row without bytes.
"""

import asyncio
import contextlib
import copy
import functools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from app.blobs import BlobNotFound, BlobStore, BlobStoreError, BlobWriter
from app.core import ids
from app.core.errors import (
    BlobMissing,
    CursorNotFound,
    DownloadRefused,
    FileNotFound,
    NotFound,
    OverQuota,
    QuotaExceeded,
    StorageUnavailable,
)
from app.core.policy import FilePolicy, guess_mime_type
from app.core.records import DEFAULT_PROJECT, Event, FileRecord, Order, Quota
from app.core.webhooks import new_event
from app.metadata.store import MetadataStore
from app.settings import DownloadPolicy, Settings

log = logging.getLogger("filedock.files")
HASH_PAGE = 100
# Files hashed at once per process: a hash takes one core (1.7 GB/s here); more would only
# take cores from the uploads still arriving.
HASHES_AT_ONCE = 1
# Records a file's row and, in the same transaction, the events that announce it.
InsertFile = Callable[[FileRecord, Sequence[Event]], Awaitable[FileRecord]]
T = TypeVar("T")


@dataclass(frozen=True)
class NewFile:
    """What the client said about a file it sends: the rest comes from its policy and bytes."""

    filename: str
    mime_type: str | None = None  # None: guessed from the filename
    expires_after: int | None = None  # seconds; None: the policy's default


class Staged:
    """Bytes received into a temporary blob, visible to no one. Made by `FileService.staging()`,
    which discards them unless `keep()` made them permanent."""

    def __init__(self, writer: BlobWriter, key: str) -> None:
        self.writer = writer
        self.key = key  # the blob key the bytes are kept under
        self.size = 0
        self.checked_purpose: str | None = None  # whose content check already ran on the way in
        self.kept = False

    async def receive(self, chunks: AsyncIterator[bytes], policy: FilePolicy) -> None:
        """Stream `chunks` in, stopping at the policy's size limit; its content check runs too."""
        check = policy.new_check()
        async for chunk in chunks:
            self.size += len(chunk)
            if self.size > policy.max_bytes:
                raise policy.too_large()
            if check:
                check.feed(chunk)
            await _blob_call(self.writer.write(chunk), "could not store the file")
        if check:
            check.finish()
            self.checked_purpose = policy.purpose

    async def keep(self) -> str:
        """Make the bytes permanent under `key` (still named by no row) and return the key."""
        await _blob_call(self.writer.commit(self.key), "could not store the file")
        self.kept = True
        return self.key

    def discard(self) -> None:
        if not self.kept:
            self.writer.abort()


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
        # Shared with every `for_project` copy: the hashes this process runs after responses.
        self._hashing: dict[str, asyncio.Task[bool]] = {}
        self._hash_gate = asyncio.Semaphore(HASHES_AT_ONCE)

    def for_project(self, project: str) -> "FileService":
        """The same service, seeing only `project`'s files. Cheap: one per request."""
        scoped = copy.copy(self)
        scoped.project = project
        return scoped

    def now(self) -> int:
        return int(self._clock())

    @contextlib.asynccontextmanager
    async def staging(self) -> AsyncIterator[Staged]:
        """A temporary blob for incoming bytes, discarded on leaving the block unless kept."""
        key = ids.new_blob_key()
        staged = Staged(await _blob_call(self.blobs.writer(key), "is unavailable"), key)
        try:
            yield staged
        finally:
            staged.discard()

    async def create_file(self, chunks: AsyncIterator[bytes], policy: FilePolicy, new: NewFile) -> FileRecord:
        """Stream a whole file in and record it: the path of every upload sent in one request."""
        async with self.staging() as staged:
            await staged.receive(chunks, policy)
            return await self.commit_file(staged, policy, new)

    async def commit_file(
        self, staged: Staged, policy: FilePolicy, new: NewFile, *, insert: InsertFile | None = None
    ) -> FileRecord:
        """Make received bytes a File under `policy`; consumes `staged`.

        A content check that could not run on the way in (the purpose came after the bytes)
        runs now over the kept blob, before any row names it. `insert` records the row instead
        of a plain insert (a completed Upload records its File and its own state in one
        transaction). The `file.created` event enters the webhook outbox in the row's
        transaction. On any failure the blob is removed again.

        The row is committed as soon as the blob is durable. When the blob writer did not hash
        the bytes on the way (local disk), the row has no SHA-256 yet: it is computed right
        after, in the background (`hash_after_response`), and fills in the row.
        """
        if policy.purpose is None:
            raise ValueError("a file needs its purpose before it is recorded")
        if staged.size > policy.max_bytes:
            raise policy.too_large()
        record = self._new_record(staged, policy, new)
        await staged.keep()
        try:
            if policy.content_check and staged.checked_purpose != policy.purpose:
                await self._check_kept(record.blob_key, policy)  # the purpose came after the bytes
            record.sha256 = staged.writer.sha256_hex()  # None: hashed after the response
            stored = await self._insert_within_quota(record, insert or self.metadata.insert_file)
        except OverQuota as exc:
            await self._delete_blob(record.blob_key)
            raise quota_exceeded(exc) from None
        except BaseException:
            await self._delete_blob(record.blob_key)
            raise
        if stored.sha256 is None:
            self.hash_after_response(stored)
        return stored

    def hash_after_response(self, record: FileRecord) -> None:
        """Hash the file's blob in the background and record the digest. Reading the blob back
        costs less than hashing on the way in: the upload no longer waits for a core to hash,
        and on local disk the bytes are still in the page cache. Should this process stop
        first, the row keeps no hash until a maintenance round's `hash_backlog`."""
        task = asyncio.create_task(self._hash(record))
        self._hashing[record.id] = task
        task.add_done_callback(lambda _: self._hashing.pop(record.id, None))

    async def hash_backlog(self) -> int:
        """Hash every file whose hash is still unknown (its process stopped before it could),
        except those this process is hashing now; how many were recorded. Another process may
        hash the same file at the same time: both get the same digest, and the conditional
        update records it once."""
        hashed, after = 0, 0
        while page := await self.metadata.unhashed_page(after, HASH_PAGE):
            after = page[-1].seq
            for record in page:
                if record.id not in self._hashing and await self._hash(record):
                    hashed += 1
        return hashed

    async def _hash(self, record: FileRecord) -> bool:
        async with self._hash_gate:
            try:
                digest = await self.blobs.sha256(record.blob_key)
                return await self.metadata.record_sha256(record.id, digest)
            except BlobNotFound:  # deleted meanwhile; a row whose blob is missing is verify's
                return False
            except (BlobStoreError, StorageUnavailable) as exc:
                log.warning(
                    "could not hash file %s yet (the next maintenance round retries): %s", record.id, exc
                )
                return False

    async def aclose(self) -> None:
        """Stop the hashes still running: their rows stay unhashed until a maintenance round."""
        tasks = list(self._hashing.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _new_record(self, staged: Staged, policy: FilePolicy, new: NewFile) -> FileRecord:
        assert policy.purpose is not None
        now = self.now()
        lifetime = new.expires_after if new.expires_after is not None else policy.default_expiry_seconds
        return FileRecord(
            id=ids.new_file_id(),
            filename=new.filename,
            purpose=policy.purpose,
            bytes=staged.size,
            created_at=now,
            expires_at=now + lifetime if lifetime is not None else None,
            status="processed",
            status_details=None,
            mime_type=new.mime_type or guess_mime_type(new.filename),
            sha256=None,  # from the writer, or after the response: see `commit_file`
            blob_key=staged.key,
            project=self.project,
        )

    async def _check_kept(self, key: str, policy: FilePolicy) -> None:
        """Run the policy's content check over a kept blob, streaming, in bounded memory."""
        check = policy.new_check()
        assert check is not None
        async for chunk in await self.open_blob(key, owner="a file being checked"):
            check.feed(chunk)
        check.finish()

    async def _insert_within_quota(self, record: FileRecord, insert: InsertFile) -> FileRecord:
        events = [file_event("file.created", record, record.created_at)]
        try:
            return await insert(record, events)
        except OverQuota:
            # Expired files are gone to clients but count until the sweeper takes them: take
            # this project's now, and try once more.
            if not await self._remove_expired(self.project):
                raise
        return await insert(record, events)

    async def check_room(self, size: int, *, body_unread: bool = False) -> None:
        """Refuse early a file that cannot fit the project's quota (its size is declared up
        front: no point taking gigabytes first). Advisory: the authoritative check is the one
        that records the file. `body_unread`: the refusal comes before the request's body."""
        usage = await self.metadata.usage(self.project)
        if not usage.has_room_for(size) and await self._remove_expired(self.project):
            usage = await self.metadata.usage(self.project)  # expired files no longer count
        if not usage.has_room_for(size):
            refusal = quota_exceeded(OverQuota(usage, size))
            refusal.body_unread = body_unread
            raise refusal

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
            now = self.now()
            announce = functools.partial(file_event, "file.deleted", now=now)
            record = await self.metadata.delete_file(self.project, file_id, now, announce)
        if record is None:
            raise FileNotFound(file_id)
        await self._delete_blob(record.blob_key)
        return record

    def may_download(self, record: FileRecord, vendor_allows: Callable[[FileRecord], bool]) -> bool:
        """The download policy: every file under `permissive`; under `vendor`, what the dialect's
        real service would let out."""
        return self.settings.download_policy is DownloadPolicy.PERMISSIVE or vendor_allows(record)

    def check_downloadable(
        self, record: FileRecord, vendor_allows: Callable[[FileRecord], bool], shown_id: str
    ) -> None:
        if not self.may_download(record, vendor_allows):
            raise DownloadRefused(shown_id, record.purpose)

    async def open_blob(
        self, key: str, start: int = 0, end: int | None = None, *, owner: str
    ) -> AsyncIterator[bytes]:
        """Bytes `start` up to `end` (exclusive) of a blob, opened before the first chunk is read;
        `owner` names what the blob holds ("file file-…") for the log, should it be missing."""
        try:
            return await self.blobs.open(key, start, end)
        except BlobNotFound:
            log.error("%s names blob %s, which is missing from the blob store", owner, key)
            raise BlobMissing from None
        except BlobStoreError as exc:
            raise StorageUnavailable("The blob store is unavailable. Please retry.") from exc

    async def delete_blobs(self, keys: Iterable[str]) -> None:
        for key in keys:
            await self._delete_blob(key)

    async def sweep(self) -> "SweepReport":
        """Remove expired files, stale temporaries and old tombstones. Safe to run concurrently."""
        report = SweepReport(expired_files=await self._remove_expired())
        report.hashed = await self.hash_backlog()
        await self.metadata.purge_tombstones(self.now() - self.settings.tombstone_retention_seconds)
        report.temporaries = await self.blobs.remove_stale_temporaries(self.settings.stale_temp_seconds)
        if report.temporaries:
            log.info("removed %d abandoned temporary uploads", report.temporaries)
        return report

    async def _remove_expired(self, project: str | None = None) -> int:
        """Delete expired files (of one project, or all), rows then blobs; how many there were."""
        now, removed = self.now(), 0
        announce = functools.partial(file_event, "file.expired", now=now)
        while expired := await self.metadata.take_expired(now, project=project, announce=announce):
            for record in expired:
                await self._delete_blob(record.blob_key)
            removed += len(expired)
        if removed:
            log.info("removed %d expired files", removed)
        return removed

    async def failing_parts(self) -> dict[str, str]:
        """Which store fails its probe (`database`, `blob_store`), each with why; empty: ready."""
        failing = {}
        try:
            await self.metadata.ping()
        except StorageUnavailable as exc:
            failing["database"] = _first_line(exc.__cause__ or exc)
        try:
            await self.blobs.check_writable()
        except BlobStoreError as exc:
            failing["blob_store"] = _first_line(exc)
        return failing

    async def check_ready(self) -> None:
        await self.metadata.ping()
        try:
            await self.blobs.check_writable()
        except BlobStoreError as exc:
            raise StorageUnavailable(f"The blob store is not writable: {exc}") from exc

    async def _delete_blob(self, key: str) -> None:
        with contextlib.suppress(BlobStoreError):  # a leftover blob is debris for gc, not a failure
            await self.blobs.delete(key)


@dataclass
class SweepReport:
    """What one sweep removed."""

    expired_files: int = 0
    temporaries: int = 0  # stale temporary blobs of abandoned uploads
    expired_uploads: int = 0
    hashed: int = 0  # files left without their hash by a process that stopped, hashed now


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else 'no detail'}"[:300]


async def _blob_call(call: Awaitable[T], failure: str) -> T:
    """The blob store's failures as `StorageUnavailable`, which clients may retry."""
    try:
        return await call
    except BlobStoreError as exc:
        raise StorageUnavailable(f"The blob store {failure}. Please retry.") from exc


def file_event(event_type: str, record: FileRecord, now: int) -> Event:
    """`file.created`, `file.deleted` or `file.expired`, naming the file by its (OpenAI) id."""
    return new_event(record.project, event_type, {"id": record.id}, now)


def project_quota(settings: Settings) -> Quota:
    """Every project's quota unless `filedock projects set-quota` gave it its own."""
    return Quota(max_bytes=settings.project_max_bytes, max_files=settings.project_max_files)


def quota_exceeded(exc: OverQuota) -> QuotaExceeded:
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
