"""Migrations and the SQL that scale-out relies on, on SQLite and PostgreSQL alike."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.errors import CursorNotFound, OverQuota
from app.core.records import FileRecord, Quota
from app.metadata.engine import create_engine
from app.metadata.maintenance_store import exclusive_round, referenced_blob_keys
from app.metadata.migrate import alembic_config, upgrade_to_head_async
from app.metadata.readers import dispose
from app.metadata.store import MetadataStore
from tests import scaleout


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'filedock.db'}"
    services: scaleout.ScaleOutBackend = request.getfixturevalue("services")
    return services.postgres.url(services.postgres.create_database())


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    await upgrade_to_head_async(database_url)
    engine = create_engine(database_url, durable=False, timeout_seconds=10)
    yield engine
    await dispose(engine)


def record(
    file_id: str, blob_key: str, *, expires_at: int | None = None, project: str = "default", size: int = 1
) -> FileRecord:
    return FileRecord(
        id=file_id, filename="a.txt", purpose="user_data", bytes=size, created_at=1000, expires_at=expires_at,
        status="processed", status_details=None, mime_type="text/plain", sha256=None, blob_key=blob_key,
        project=project,
    )  # fmt: skip


def test_migrations_upgrade_downgrade_upgrade_and_match_the_tables(database_url: str) -> None:
    config = alembic_config(database_url)
    command.upgrade(config, "head")
    command.downgrade(config, "base")
    command.upgrade(config, "head")
    command.check(config)  # the tables in tables.py and the migrated schema agree


async def test_referenced_blob_keys_names_only_keys_rows_hold(engine: AsyncEngine) -> None:
    await MetadataStore(engine).insert_file(record("file-a", "keyA"))
    assert await referenced_blob_keys(engine, ["keyA", "keyB"]) == {"keyA"}


async def test_a_files_hash_is_recorded_once_by_concurrent_hashers(engine: AsyncEngine) -> None:
    store = MetadataStore(engine)
    await store.insert_file(record("file-h", "keyH"))
    assert [r.id for r in await store.unhashed_page(0, 10)] == ["file-h"]
    won = await asyncio.gather(*(store.record_sha256("file-h", "ab" * 32) for _ in range(4)))
    assert sorted(won) == [False, False, False, True]
    assert await store.unhashed_page(0, 10) == []
    stored = await store.get_file("default", "file-h", 2000)
    assert stored is not None and stored.sha256 == "ab" * 32


async def test_expired_rows_are_taken_once(engine: AsyncEngine) -> None:
    store = MetadataStore(engine)
    await store.insert_file(record("file-e", "keyE", expires_at=1500))
    assert [r.id for r in await store.take_expired(2000)] == ["file-e"]
    assert await store.take_expired(2000) == []


async def test_delete_has_one_winner(engine: AsyncEngine) -> None:
    store = MetadataStore(engine)
    await store.insert_file(record("file-d", "keyD"))
    assert (await store.delete_file("default", "file-d", 2000)) is not None
    assert (await store.delete_file("default", "file-d", 2000)) is None


async def test_another_projects_file_is_invisible(engine: AsyncEngine) -> None:
    store = MetadataStore(engine)
    await store.insert_file(record("file-p", "keyP", project="alpha"))
    assert await store.get_file("beta", "file-p", 2000) is None
    assert await store.delete_file("beta", "file-p", 2000) is None
    assert (await store.list_files("beta", purpose=None, after=None, limit=10, order="asc", now=2000))[
        0
    ] == []
    with pytest.raises(CursorNotFound):
        await store.list_files("beta", purpose=None, after="file-p", limit=10, order="asc", now=2000)
    assert (await store.get_file("alpha", "file-p", 2000)) is not None


async def test_parallel_inserts_never_overshoot_the_quota(engine: AsyncEngine) -> None:
    """50 inserts of 10 bytes race for a 105-byte quota: exactly 10 fit, on SQLite and PostgreSQL."""
    store = MetadataStore(engine, Quota(max_bytes=105, max_files=1000))

    async def insert(n: int) -> bool:
        try:
            await store.insert_file(record(f"file-q{n}", f"keyQ{n}", project="racers", size=10))
        except OverQuota:
            return False
        return True

    results = await asyncio.gather(*(insert(n) for n in range(50)))
    assert sum(results) == 10
    usage = await store.usage("racers")
    assert (usage.bytes, usage.files) == (100, 10)


async def test_delete_and_expiry_give_the_quota_back(engine: AsyncEngine) -> None:
    store = MetadataStore(engine, Quota(max_bytes=1000, max_files=2))
    await store.insert_file(record("file-r1", "keyR1", project="givers", size=7))
    await store.insert_file(record("file-r2", "keyR2", project="givers", size=5, expires_at=1500))
    with pytest.raises(OverQuota):
        await store.insert_file(record("file-r3", "keyR3", project="givers"))
    await store.delete_file("givers", "file-r1", 2000)
    await store.take_expired(2000)
    usage = await store.usage("givers")
    assert (usage.bytes, usage.files) == (0, 0)
    await store.set_quota("givers", max_bytes=None, max_files=5)
    assert (await store.usage("givers")).max_files == 5


async def test_only_one_maintenance_round_runs_at_once(engine: AsyncEngine) -> None:
    async with exclusive_round(engine) as first, exclusive_round(engine) as second:
        assert first
        assert second == (engine.dialect.name != "postgresql")  # SQLite relies on conditional deletes
