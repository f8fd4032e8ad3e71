"""`filedock backup DEST` and `filedock restore SRC --data-dir D`, for the embedded default (SQLite
and blobs on local disk), online: servers keep serving meanwhile.

A backup is a directory laid out like a data dir (`filedock.db`, `blobs/`) plus `backup.json`,
written last, so a backup without it is unfinished. The steps:

1. Link (or copy) every blob present now: the blobs of every file the database can name in
   step 2, unless created after this step began.
2. Copy the database with SQLite's online backup API: one committed state.
3. Link the blobs that copy names and step 1 missed (files created meanwhile). A blob gone by
   now belonged to a file deleted after step 2: the copy lacks its bytes.
4. `verify --repair` on the backup itself: such a file is deleted there as a client delete
   would (so the backup is the snapshot plus that delete), and blobs the copy does not name
   (uploads in flight, files deleted before step 2) are dropped.

PostgreSQL and S3 are refused: their own tools do it better (pg_dump, bucket versioning).
"""

import json
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

from app.admin import AdminError, sqlite_path
from app.blobs.snapshot import BlobTreeCopier, committed_keys
from app.core.verify import Verifier, VerifyOptions
from app.metadata.backup import copy_database, named_blob_keys
from app.metadata.migrate import upgrade_to_head_async
from app.settings import Settings
from app.stores import open_stores

DATABASE = "filedock.db"
MANIFEST = "backup.json"
DOCS = "docs/operations.md, section 'Backup and restore'"


@dataclass
class BackupReport:
    files: int = 0
    bytes: int = 0
    blobs: int = 0
    linked: int = 0
    copied: int = 0
    deleted_meanwhile: int = 0  # files whose bytes went away between the snapshot and the copy
    created_at: int = 0


def embedded_locations(settings: Settings, verb: str) -> tuple[Path, Path]:
    """The SQLite file and the blob root, or a refusal for PostgreSQL and S3."""
    database = sqlite_path(settings)
    blobs = urlparse(settings.blob_url)
    if database is None or blobs.scheme != "file":
        raise AdminError(
            f"filedock {verb} handles the embedded SQLite database and local blobs only; for PostgreSQL "
            f"and S3 use pg_dump and bucket versioning instead (see {DOCS})"
        )
    return database, Path(url2pathname(blobs.path))


async def backup(settings: Settings, destination: Path, *, copy: bool = False) -> BackupReport:
    database, blob_root = embedded_locations(settings, "backup")
    if not database.exists():
        raise AdminError(f"there is no FileDock database at {database}: check --data-dir")
    _require_empty(destination)
    copier = BlobTreeCopier(blob_root, destination / "blobs", copy=copy)
    for key in committed_keys(blob_root):
        copier.put(key)
    copy_database(database, destination / DATABASE)
    for key in named_blob_keys(destination / DATABASE):
        copier.put(key)
    report = await _settle(settings, destination)
    report.linked, report.copied = copier.linked, copier.copied
    _write_durably(destination / MANIFEST, json.dumps(asdict(report), indent=2) + "\n")
    return report


async def _settle(settings: Settings, destination: Path) -> BackupReport:
    """Step 4: the backup's own rows and blobs made to agree; what it then holds."""
    settings = settings.model_copy(
        update={
            "data_dir": destination,
            "database_url": f"sqlite+aiosqlite:///{(destination / DATABASE).absolute()}",
            "blob_url": (destination / "blobs").absolute().as_uri(),
            "fsync": False,
        }
    )
    report = BackupReport(created_at=int(time.time()))
    async with open_stores(settings) as stores:
        verifier = Verifier(stores.files, stores.maintenance, VerifyOptions(repair=True, grace_seconds=0))
        async for finding in verifier.run():
            if finding.kind in ("missing-blob", "size-mismatch"):
                report.deleted_meanwhile += 1
        for usage in await stores.metadata.all_usage():
            report.files += usage.files
            report.bytes += usage.bytes
        report.blobs = verifier.report.blobs - verifier.report.findings.get("orphan-blob", 0)
    shutil.rmtree(destination / "blobs" / "tmp", ignore_errors=True)
    return report


async def restore(source: Path, settings: Settings, *, copy: bool = False) -> BackupReport:
    """Make `settings`' data dir a copy of the backup at `source`, migrated to this version."""
    database, blob_root = embedded_locations(settings, "restore")
    manifest = source / MANIFEST
    if not manifest.exists() or not (source / DATABASE).exists():
        raise AdminError(f"{source} is not a finished FileDock backup (no {MANIFEST} or {DATABASE} in it)")
    if database.exists():
        raise AdminError(f"{database} exists already: restore into a new, empty data dir")
    database.parent.mkdir(parents=True, exist_ok=True)
    copy_database(source / DATABASE, database)
    copier = BlobTreeCopier(source / "blobs", blob_root, copy=copy)
    for key in committed_keys(source / "blobs"):
        copier.put(key)
    await upgrade_to_head_async(settings.database_url)  # a backup from an older version
    report = BackupReport(**json.loads(manifest.read_text()))
    report.linked, report.copied = copier.linked, copier.copied
    return report


def _write_durably(path: Path, text: str) -> None:
    """Copied blobs are fsync'd as they are copied, linked ones are the live blobs themselves, and
    SQLite syncs the database copy: the manifest, written last, is synced too."""
    with path.open("w") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())


def _require_empty(destination: Path) -> None:
    if destination.exists() and any(destination.iterdir()):
        raise AdminError(f"{destination} is not empty: back up into a new directory")
    destination.mkdir(parents=True, exist_ok=True)
