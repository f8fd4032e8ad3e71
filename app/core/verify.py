"""`filedock verify`: check that rows and blobs agree, and optionally repair what does not.

Three passes, each streaming in pages, so memory stays flat however many files there are:

1. Every file row, in `seq` order (keyset pages): its blob must exist with the row's size and,
   with `deep`, the row's SHA-256. A suspect row is looked up again before it is reported, so
   a file a client deletes meanwhile is not taken for damage. A row whose hash is not known yet
   (hashing runs after the upload's response) gets it recorded by `deep`, as a maintenance
   round would. Repair deletes the row as a client
   delete would (leaving a tombstone, so list cursors naming it still work) and its blob.
2. Every Upload Part whose Upload is missing or finished: nothing will ever free it. Repair
   deletes its row and blob.
3. Every blob, as the store lists it: one that no row names is an orphan. Orphans younger than
   the gc grace may be uploads in flight and are only counted; repair removes the older ones,
   asking the database again right before (as gc does), so a blob recorded meanwhile is kept.

Safe while servers run, on SQLite and disk as on PostgreSQL and S3.
"""

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from app.blobs import BlobInfo, BlobNotFound, BlobStoreError
from app.core.errors import FileNotFound, StorageUnavailable
from app.core.files import FileService
from app.core.records import FileRecord
from app.metadata.maintenance_store import MaintenanceStore

PAGE = 500


@dataclass(frozen=True)
class Finding:
    """One disagreement between rows and blobs."""

    kind: str  # missing-blob, size-mismatch, sha256-mismatch, stray-part or orphan-blob
    subject: str  # the file id, Part id or blob key
    detail: str
    repaired: bool = False


@dataclass
class VerifyReport:
    rows: int = 0  # file rows checked
    parts: int = 0  # stray Parts found
    blobs: int = 0  # blobs listed
    young_orphans: int = 0  # unnamed blobs younger than the grace: maybe uploads in flight
    hashed: int = 0  # rows whose hash was not known yet, recorded by `deep`
    findings: dict[str, int] = field(default_factory=dict)
    unrepaired: int = 0

    def count(self, finding: Finding) -> None:
        self.findings[finding.kind] = self.findings.get(finding.kind, 0) + 1
        if not finding.repaired:
            self.unrepaired += 1


@dataclass(frozen=True)
class VerifyOptions:
    deep: bool = False  # also hash every blob
    repair: bool = False
    grace_seconds: float = 3600.0  # orphans younger than this are left alone


class Verifier:
    def __init__(
        self,
        files: FileService,
        store: MaintenanceStore,
        options: VerifyOptions,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.files = files
        self.store = store
        self.options = options
        self.report = VerifyReport()
        self._clock = clock

    async def run(self) -> AsyncIterator[Finding]:
        """Every finding, as it is found (and repaired, if asked); the totals in `report`."""
        try:
            for check in (self._check_rows, self._check_parts, self._check_blobs):
                async for finding in check():
                    self.report.count(finding)
                    yield finding
        except BlobStoreError as exc:
            raise StorageUnavailable(f"The blob store failed during verify: {exc}") from exc

    # --- 1. rows against blobs ---------------------------------------------------------------

    async def _check_rows(self) -> AsyncIterator[Finding]:
        after = 0
        while page := await self.store.file_page(after, PAGE):
            after = page[-1].seq
            self.report.rows += len(page)
            sizes = await self.files.blobs.sizes([r.blob_key for r in page])
            suspects = [(r, problem) for r in page if (problem := await self._problem(r, sizes))]
            still_there = await self.store.existing_file_ids([r.id for r, _ in suspects])
            for record, (kind, detail) in suspects:
                if record.id in still_there:
                    yield Finding(kind, record.id, detail, await self._repair_row(record))

    async def _problem(self, record: FileRecord, sizes: dict[str, int]) -> tuple[str, str] | None:
        size = sizes.get(record.blob_key)
        where = f"project {record.project}, blob {record.blob_key}"
        if size is None:
            return "missing-blob", f"{where}: the blob is missing"
        if size != record.bytes:
            return "size-mismatch", f"{where}: the row says {record.bytes} bytes, the blob holds {size}"
        if self.options.deep:
            digest = await self._sha256(record.blob_key)
            if digest is None:
                return "missing-blob", f"{where}: the blob is missing"
            if record.sha256 is None:  # not hashed yet: nothing to compare, the digest is the hash
                self.report.hashed += await self.files.metadata.record_sha256(record.id, digest)
                return None
            if digest != record.sha256:
                return (
                    "sha256-mismatch",
                    f"{where}: the blob's SHA-256 is {digest}, the row's {record.sha256}",
                )
        return None

    async def _sha256(self, key: str) -> str | None:
        try:
            return await self.files.blobs.sha256(key)
        except BlobNotFound:
            return None

    async def _repair_row(self, record: FileRecord) -> bool:
        if not self.options.repair:
            return False
        try:
            await self.files.for_project(record.project).delete_file(record.id)
        except FileNotFound:  # expired meanwhile: the sweeper removes it like a delete
            return False
        return True

    # --- 2. Parts nothing will free ----------------------------------------------------------

    async def _check_parts(self) -> AsyncIterator[Finding]:
        after = ""
        while page := await self.store.stray_parts_page(after, PAGE):
            after = page[-1].id
            self.report.parts += len(page)
            repaired: set[str] = set()
            if self.options.repair:
                keys = await self.store.delete_stray_parts([p.id for p in page])
                await self.files.delete_blobs(keys)
                repaired = set(keys)
            for part in page:
                detail = (
                    f"Upload {part.upload_id} is gone or finished; blob {part.blob_key}, {part.bytes} bytes"
                )
                yield Finding("stray-part", part.id, detail, part.blob_key in repaired)

    # --- 3. blobs against rows ---------------------------------------------------------------

    async def _check_blobs(self) -> AsyncIterator[Finding]:
        batch: list[BlobInfo] = []
        async for info in self.files.blobs.list_blobs():
            batch.append(info)
            if len(batch) >= PAGE:
                async for finding in self._unnamed(batch):
                    yield finding
                batch = []
        async for finding in self._unnamed(batch):
            yield finding

    async def _unnamed(self, batch: list[BlobInfo]) -> AsyncIterator[Finding]:
        self.report.blobs += len(batch)
        named = await self.store.referenced_blob_keys([b.key for b in batch])
        cutoff = self._clock() - self.options.grace_seconds
        for info in batch:
            if info.key in named:
                continue
            if info.modified >= cutoff:
                self.report.young_orphans += 1
                continue
            repaired = False
            if self.options.repair and not await self.store.referenced_blob_keys([info.key]):
                await self.files.blobs.delete(info.key)
                repaired = True
            yield Finding("orphan-blob", info.key, f"{info.size} bytes that no row names", repaired)
