"""`filedock doctor`: is this machine ready to serve? Each check says `ok` or what to fix, and
none changes anything but a probe blob it removes again (the database is neither created nor
migrated; only the blob directory is made if missing, as any command would).
"""

import secrets
import shutil
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from app.admin import describe_database, sqlite_path
from app.blobs import BlobStore, BlobStoreError, open_blob_store
from app.core.errors import StorageUnavailable
from app.core.units import human_size
from app.metadata.migrate import migration_state
from app.settings import Settings

MIN_FREE_BYTES = 1024**3
MIN_FREE_FRACTION = 0.05
MAX_CLOCK_SKEW_SECONDS = 30.0
PROBE = b"filedock doctor probe"


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str  # what was found, or what to fix


async def diagnose(settings: Settings) -> AsyncIterator[Check]:
    yield Check(
        "configuration",
        True,
        f"data dir {settings.data_dir.absolute()}, database {describe_database(settings)}, "
        f"blobs {settings.blob_url}",
    )
    async for check in _database(settings):
        yield check
    yield await _blob_store(settings)
    yield _free_space(settings)


async def _database(settings: Settings) -> AsyncIterator[Check]:
    path = sqlite_path(settings)
    if path is not None and not path.exists():
        yield Check(
            "database", False, f"no database at {path}: run `filedock migrate` (or `serve`) to create it"
        )
        return
    try:
        current, head, clock = await migration_state(settings.database_url)
    except StorageUnavailable as exc:
        cause = exc.__cause__ or exc
        yield Check(
            "database", False, f"does not answer ({cause}): check FILEDOCK_DATABASE_URL and the server"
        )
        return
    yield Check("database", True, "answers")
    if current == head:
        yield Check("migrations", True, f"at the newest revision ({head})")
    else:
        yield Check("migrations", False, f"at {current}, this version needs {head}: run `filedock migrate`")
    if clock is None:
        yield Check("clock", True, "SQLite shares this machine's clock")
    elif abs(clock - time.time()) > MAX_CLOCK_SKEW_SECONDS:
        skew = clock - time.time()
        yield Check(
            "clock", False, f"the database's clock is {skew:+.0f} s off this machine's: run NTP on both"
        )
    else:
        yield Check("clock", True, "agrees with the database server's")


async def _blob_store(settings: Settings) -> Check:
    key = "doctor_" + secrets.token_hex(8)
    try:
        blobs = open_blob_store(settings)
    except (ValueError, OSError) as exc:
        return Check("blob store", False, f"cannot open it: {exc}")
    try:
        await _round_trip(blobs, key)
    except (BlobStoreError, OSError) as exc:
        return Check("blob store", False, f"{exc}: check FILEDOCK_BLOB_URL, permissions and credentials")
    finally:
        await blobs.aclose()
    return Check("blob store", True, "write, read and delete work")


async def _round_trip(blobs: BlobStore, key: str) -> None:
    writer = await blobs.writer(key)
    try:
        await writer.write(PROBE)
        await writer.commit(key)
    finally:
        writer.abort()
    try:
        read = b"".join([chunk async for chunk in await blobs.open(key)])
        if read != PROBE:
            raise BlobStoreError(f"a probe blob read back {len(read)} bytes, not the {len(PROBE)} written")
    finally:
        await blobs.delete(key)


def _free_space(settings: Settings) -> Check:
    directory = _existing(settings.data_dir.absolute())
    usage = shutil.disk_usage(directory)
    free = f"{human_size(usage.free)} free of {human_size(usage.total)} at {directory}"
    if usage.free < MIN_FREE_BYTES or usage.free < usage.total * MIN_FREE_FRACTION:
        return Check("free space", False, f"only {free}: delete files or grow the disk")
    return Check("free space", True, free)


def _existing(path: Path) -> Path:
    while not path.exists() and path.parent != path:
        path = path.parent
    return path
