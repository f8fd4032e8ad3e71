"""Background maintenance: expire Uploads and files, then collect garbage blobs.

Garbage is a blob that no row names: left by a process killed between writing a blob and
recording it, or between deleting a row and its blob. `collect_garbage` lists blobs older than
`gc_grace_seconds` (a blob is recorded right after it is written, so a young blob may still be
about to get its row), asks the database which of them rows name, and deletes the rest. It
lists first and asks second, so a row recorded meanwhile is always seen.

Every replica runs `Maintenance.run_forever`; on PostgreSQL an advisory lock lets one run a
round while the others skip it. Each step is also safe run twice at once: the database's
conditional deletes decide who removes which row, and deleting a blob is idempotent.
"""

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from app.blobs import BlobStore, BlobStoreError
from app.errors import StorageUnavailable
from app.metadata.maintenance_store import exclusive_round, referenced_blob_keys
from app.service import FileService
from app.settings import Settings
from app.uploads import UploadService

log = logging.getLogger("filedock.maintenance")
GC_BATCH = 500
# The background gc never goes below this grace, whatever is set: a blob this young may be
# between being written and being recorded. `filedock gc --grace-seconds` may go lower.
MIN_BACKGROUND_GRACE_SECONDS = 60


@dataclass
class GcReport:
    examined: int = 0  # blobs old enough to be considered
    removed: int = 0  # of those, the ones no row named


async def collect_garbage(engine: AsyncEngine, blobs: BlobStore, *, grace_seconds: float) -> GcReport:
    """Delete blobs older than `grace_seconds` that no row names."""
    report = GcReport()
    batch: list[str] = []
    try:
        async for key in blobs.list_keys(time.time() - grace_seconds):
            batch.append(key)
            if len(batch) >= GC_BATCH:
                await _remove_unreferenced(engine, blobs, batch, report)
                batch = []
        await _remove_unreferenced(engine, blobs, batch, report)
    except BlobStoreError as exc:
        raise StorageUnavailable(f"The blob store failed during gc: {exc}") from exc
    return report


async def _remove_unreferenced(
    engine: AsyncEngine, blobs: BlobStore, keys: list[str], report: GcReport
) -> None:
    referenced = await referenced_blob_keys(engine, keys)
    report.examined += len(keys)
    for key in keys:
        if key not in referenced:
            await blobs.delete(key)
            report.removed += 1
            log.info("gc removed blob %s, which no row names", key)


class Maintenance:
    """One round: expire Uploads, sweep files, and (when due) collect garbage blobs."""

    def __init__(
        self,
        files: FileService,
        uploads: UploadService,
        engine: AsyncEngine,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.files = files
        self.uploads = uploads
        self.engine = engine
        self._clock = clock
        self._last_gc: float | None = None

    async def run_round(self, *, gc_grace_seconds: float | None = None) -> GcReport | None:
        """Run a round unless another replica is running one; the gc report if gc ran."""
        async with exclusive_round(self.engine) as mine:
            if not mine:
                return None
            await self.uploads.sweep()  # first: the Parts it frees are blobs, removed right away
            await self.files.sweep()
            if gc_grace_seconds is None and not self._gc_due():
                return None
            grace = gc_grace_seconds if gc_grace_seconds is not None else self._background_grace()
            report = await collect_garbage(self.engine, self.files.blobs, grace_seconds=grace)
            self._last_gc = self._clock()
            return report

    def _background_grace(self) -> float:
        return max(self.files.settings.gc_grace_seconds, MIN_BACKGROUND_GRACE_SECONDS)

    def _gc_due(self) -> bool:
        """Listing a bucket costs: the background gc runs once per grace period."""
        return self._last_gc is None or self._clock() - self._last_gc >= self._background_grace()

    async def run_forever(self, interval: float) -> None:
        while True:
            try:
                await self.run_round()
            except Exception:  # maintenance must outlive a failing database; it retries next round
                log.exception("maintenance failed; retrying in %.0f s", interval)
            await asyncio.sleep(interval)


async def run_gc(settings: Settings) -> GcReport | None:
    """`filedock gc`: one maintenance round with gc, on stores opened from `settings`."""
    from app.blobs import open_blob_store
    from app.metadata.engine import create_engine
    from app.metadata.migrate import upgrade_to_head_async
    from app.metadata.store import MetadataStore
    from app.metadata.uploads_store import UploadStore

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    await upgrade_to_head_async(settings.database_url)
    engine = create_engine(settings.database_url, timeout_seconds=settings.storage_timeout_seconds)
    blobs = open_blob_store(settings)
    try:
        files = FileService(settings, MetadataStore(engine), blobs)
        maintenance = Maintenance(files, UploadService(files, UploadStore(engine)), engine)
        return await maintenance.run_round(gc_grace_seconds=settings.gc_grace_seconds)
    finally:
        await blobs.aclose()
        await engine.dispose()
