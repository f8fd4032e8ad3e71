"""The SQL of maintenance and `filedock verify`: which blobs rows still name, every file row in
`seq` order (keyset pages, so memory stays flat on a million rows), Parts whose Upload is gone or
finished, and one replica at a time.

`referenced_blob_keys` is how gc tells a live blob from debris. `exclusive_round` lets only one
replica run a maintenance round at once on PostgreSQL (a session advisory lock, tried, never
waited for); on SQLite every worker shares one file, and the conditional deletes suffice.
"""

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Sequence

from sqlalchemy import delete, select, text, union
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.errors import StorageUnavailable
from app.core.records import FileRecord, PartRecord
from app.metadata.engine import reading, transaction
from app.metadata.tables import FileRow, UploadPartRow, UploadRow

MAINTENANCE_LOCK_ID = 0x46444F434B4D4E54  # "FDOCKMNT"; migrations use another id
_FILE_COLUMNS = [getattr(FileRow, f.name) for f in dataclasses.fields(FileRecord)]
_PART_COLUMNS = [getattr(UploadPartRow, f.name) for f in dataclasses.fields(PartRecord)]


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

    async def file_page(self, after_seq: int, limit: int) -> list[FileRecord]:
        """Up to `limit` file rows of every project, expired or not, with `seq` above `after_seq`."""
        query = select(*_FILE_COLUMNS).where(FileRow.seq > after_seq).order_by(FileRow.seq).limit(limit)
        async with reading(self._engine) as connection:
            return [FileRecord(*row) for row in (await connection.execute(query)).all()]

    async def existing_file_ids(self, file_ids: Sequence[str]) -> set[str]:
        """Those of `file_ids` that still have a row."""
        if not file_ids:
            return set()
        async with reading(self._engine) as connection:
            result = await connection.execute(select(FileRow.id).where(FileRow.id.in_(file_ids)))
            return set(result.scalars().all())

    async def stray_parts_page(self, after_id: str, limit: int) -> list[PartRecord]:
        """Parts (ids above `after_id`) whose Upload is missing or no longer open: nothing will
        ever complete or free them."""
        open_upload = select(UploadRow.id).where(
            UploadRow.id == UploadPartRow.upload_id, UploadRow.status.in_(("pending", "completing"))
        )
        query = (
            select(*_PART_COLUMNS)
            .where(UploadPartRow.id > after_id, ~open_upload.exists())
            .order_by(UploadPartRow.id)
            .limit(limit)
        )
        async with reading(self._engine) as connection:
            return [PartRecord(*row) for row in (await connection.execute(query)).all()]

    async def delete_stray_parts(self, part_ids: Sequence[str]) -> list[str]:
        """Delete these Parts' rows if their Upload is still missing or finished; their blob keys."""
        open_upload = select(UploadRow.id).where(
            UploadRow.id == UploadPartRow.upload_id, UploadRow.status.in_(("pending", "completing"))
        )
        statement = (
            delete(UploadPartRow)
            .where(UploadPartRow.id.in_(part_ids), ~open_upload.exists())
            .returning(UploadPartRow.blob_key)
        )
        async with transaction(self._engine) as connection:
            return list((await connection.execute(statement)).scalars().all())

    def exclusive_round(self) -> contextlib.AbstractAsyncContextManager[bool]:
        return exclusive_round(self._engine)
