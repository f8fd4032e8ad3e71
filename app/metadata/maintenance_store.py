"""The SQL of background maintenance: which blobs rows still name, and one replica at a time.

`referenced_blob_keys` is how gc tells a live blob from debris. `exclusive_round` lets only one
replica run a maintenance round at once on PostgreSQL (a session advisory lock, tried, never
waited for); on SQLite every worker shares one file, and the conditional deletes suffice.
"""

import contextlib
from collections.abc import AsyncIterator, Sequence

from sqlalchemy import select, text, union
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.errors import StorageUnavailable
from app.metadata.engine import transaction
from app.metadata.tables import FileRow, UploadPartRow

MAINTENANCE_LOCK_ID = 0x46444F434B4D4E54  # "FDOCKMNT"; migrations use another id


async def referenced_blob_keys(engine: AsyncEngine, keys: Sequence[str]) -> set[str]:
    """Those of `keys` that a file or an Upload's Part still names."""
    if not keys:
        return set()
    query = union(
        select(FileRow.blob_key).where(FileRow.blob_key.in_(keys)),
        select(UploadPartRow.blob_key).where(UploadPartRow.blob_key.in_(keys)),
    )
    async with transaction(engine) as connection:
        return set((await connection.execute(query)).scalars().all())


@contextlib.asynccontextmanager
async def exclusive_round(engine: AsyncEngine) -> AsyncIterator[bool]:
    """True inside if this process may run the round; False if another replica is running one."""
    if engine.dialect.name != "postgresql":
        yield True
        return
    try:
        connection = await engine.connect()
    except (OperationalError, DBAPIError, OSError) as exc:
        raise StorageUnavailable("The metadata database is unavailable. Please retry.") from exc
    try:
        lock = text("SELECT pg_try_advisory_lock(:id)")
        acquired = bool((await connection.execute(lock, {"id": MAINTENANCE_LOCK_ID})).scalar())
        await connection.commit()
        try:
            yield acquired
        finally:
            if acquired:
                await connection.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": MAINTENANCE_LOCK_ID})
                await connection.commit()
    finally:
        await connection.close()  # a broken connection loses the lock with it, server-side


class MaintenanceStore:
    """The two queries above, for the core's maintenance jobs, on one engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def referenced_blob_keys(self, keys: Sequence[str]) -> set[str]:
        return await referenced_blob_keys(self._engine, keys)

    def exclusive_round(self) -> contextlib.AbstractAsyncContextManager[bool]:
        return exclusive_round(self._engine)
