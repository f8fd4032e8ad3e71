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

from app.blobs import BlobStore, BlobStoreError
from app.core.errors import StorageUnavailable
from app.core.files import FileService, SweepReport
from app.core.uploads import UploadService
from app.metadata.maintenance_store import MaintenanceStore

log = logging.getLogger("filedock.maintenance")
GC_BATCH = 500
# The background gc never goes below this grace, whatever is set: a blob this young may be
# between being written and being recorded. `filedock gc --grace-seconds` may go lower.
MIN_BACKGROUND_GRACE_SECONDS = 60


@dataclass
class GcReport:
    examined: int = 0  # blobs old enough to be considered
    removed: int = 0  # of those, the ones no row named


async def collect_garbage(store: MaintenanceStore, blobs: BlobStore, *, grace_seconds: float) -> GcReport:
    """Delete blobs older than `grace_seconds` that no row names."""
    report = GcReport()
    batch: list[str] = []
    try:
        async for key in blobs.list_keys(time.time() - grace_seconds):
            batch.append(key)
            if len(batch) >= GC_BATCH:
                await _remove_unreferenced(store, blobs, batch, report)
                batch = []
        await _remove_unreferenced(store, blobs, batch, report)
    except BlobStoreError as exc:
        raise StorageUnavailable(f"The blob store failed during gc: {exc}") from exc
    return report


async def _remove_unreferenced(
    store: MaintenanceStore, blobs: BlobStore, keys: list[str], report: GcReport
) -> None:
    referenced = await store.referenced_blob_keys(keys)
    report.examined += len(keys)
    for key in keys:
        if key not in referenced:
            await blobs.delete(key)
            report.removed += 1
            log.info("gc removed blob %s, which no row names", key)


@dataclass
class RoundReport:
    """What one background round did: skipped (another replica ran it), failed, or its reports."""

    ran: bool = False
    failed: bool = False
    sweep: SweepReport | None = None
    gc: GcReport | None = None


def _ignore(report: RoundReport) -> None:
    pass


class Maintenance:
    """One round: expire Uploads, sweep files, and (when due) collect garbage blobs. `observe`
    hears of every background round (the metrics count them)."""

    def __init__(
        self,
        files: FileService,
        uploads: UploadService,
        store: MaintenanceStore,
        clock: Callable[[], float] = time.monotonic,
        observe: Callable[[RoundReport], None] = _ignore,
    ) -> None:
        self.files = files
        self.uploads = uploads
        self.store = store
        self._clock = clock
        self._observe = observe
        self._last_gc: float | None = None
        self._last_sweep: SweepReport | None = None

    async def run_round(self, *, gc_grace_seconds: float | None = None) -> GcReport | None:
        """Run a round unless another replica is running one; the gc report if gc ran."""
        async with self.store.exclusive_round() as mine:
            if not mine:
                return None
            expired_uploads = await self.uploads.sweep()  # first: the Parts it frees are blobs
            self._last_sweep = await self.files.sweep()
            self._last_sweep.expired_uploads = expired_uploads
            if gc_grace_seconds is None and not self._gc_due():
                return None
            grace = gc_grace_seconds if gc_grace_seconds is not None else self._background_grace()
            report = await collect_garbage(self.store, self.files.blobs, grace_seconds=grace)
            self._last_gc = self._clock()
            return report

    def _background_grace(self) -> float:
        return max(self.files.settings.gc_grace_seconds, MIN_BACKGROUND_GRACE_SECONDS)

    def _gc_due(self) -> bool:
        """Listing a bucket costs: the background gc runs once per grace period."""
        return self._last_gc is None or self._clock() - self._last_gc >= self._background_grace()

    async def run_forever(self, interval: float) -> None:
        while True:
            self._observe(await self._background_round(interval))
            await asyncio.sleep(interval)

    async def _background_round(self, interval: float) -> RoundReport:
        self._last_sweep = None
        try:
            gc = await self.run_round()
        except Exception:  # maintenance must outlive a failing database; it retries next round
            log.exception("maintenance failed; retrying in %.0f s", interval)
            return RoundReport(ran=True, failed=True)
        return RoundReport(ran=self._last_sweep is not None, sweep=self._last_sweep, gc=gc)
