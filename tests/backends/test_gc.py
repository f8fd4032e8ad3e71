"""`collect_garbage` on the embedded backend (the S3 side is in test_crash_and_gc.py)."""

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.blobs.local import LocalBlobStore
from app.core.maintenance import collect_garbage
from app.core.records import FileRecord
from app.metadata.engine import create_engine
from app.metadata.maintenance_store import MaintenanceStore
from app.metadata.migrate import upgrade_to_head_async
from app.metadata.readers import dispose
from app.metadata.store import MetadataStore


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'filedock.db'}"
    await upgrade_to_head_async(url)
    engine = create_engine(url, durable=False)
    yield engine
    await dispose(engine)


async def put(blobs: LocalBlobStore, key: str) -> None:
    writer = await blobs.writer(key)
    await writer.write(b"bytes")
    await writer.commit(key)


async def test_gc_removes_only_blobs_no_row_names(engine: AsyncEngine, tmp_path: Path) -> None:
    blobs = LocalBlobStore(tmp_path / "blobs", fsync=False)
    await put(blobs, "KeptBlob")
    await put(blobs, "OrphanBlob")
    record = FileRecord(
        "file-kept", "k.txt", "user_data", 5, 1, None, "processed", None, "text/plain", "", "KeptBlob"
    )
    await MetadataStore(engine).insert_file(record)

    report = await collect_garbage(MaintenanceStore(engine), blobs, grace_seconds=0)

    assert (report.examined, report.removed) == (2, 1)
    assert [key async for key in blobs.list_keys(time.time() + 60)] == ["KeptBlob"]
    await blobs.aclose()


async def test_gc_spares_blobs_younger_than_the_grace_period(engine: AsyncEngine, tmp_path: Path) -> None:
    blobs = LocalBlobStore(tmp_path / "blobs", fsync=False)
    await put(blobs, "YoungOrphan")  # as if its row were about to be written

    report = await collect_garbage(MaintenanceStore(engine), blobs, grace_seconds=3600)

    assert (report.examined, report.removed) == (0, 0)
    await blobs.aclose()
