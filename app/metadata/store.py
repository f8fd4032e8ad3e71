"""`MetadataStore`: the only code that runs SQL. It hands out plain records, never ORM objects."""

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Select, delete, insert, or_, select, tuple_
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.errors import StorageUnavailable
from app.metadata.tables import FileRow, FileTombstone

Order = Literal["asc", "desc"]


@dataclass(frozen=True)
class FileRecord:
    id: str
    filename: str
    purpose: str
    bytes: int
    created_at: int
    expires_at: int | None
    status: str
    status_details: str | None
    mime_type: str
    sha256: str
    blob_key: str
    seq: int = 0


@dataclass(frozen=True)
class Position:
    """A place in list order: `(created_at, seq)`."""

    created_at: int
    seq: int


class CursorNotFound(Exception):
    """`after` names an id that was never issued (or whose tombstone has been purged)."""


_FILE_COLUMNS = [getattr(FileRow, f.name) for f in dataclasses.fields(FileRecord)]


def _record(row: Any) -> FileRecord:
    return FileRecord(**row._mapping)


def _live(now: int) -> Any:
    return or_(FileRow.expires_at.is_(None), FileRow.expires_at > now)


@contextlib.asynccontextmanager
async def transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """One transaction; database failures become `StorageUnavailable` here and only here."""
    try:
        async with engine.begin() as connection:
            yield connection
    except (OperationalError, DBAPIError, OSError) as exc:
        raise StorageUnavailable("The metadata database is unavailable. Please retry.") from exc


async def insert_file_row(connection: AsyncConnection, record: FileRecord) -> FileRecord:
    """Insert a file's row inside the caller's transaction; the record comes back with its `seq`."""
    values = dataclasses.asdict(record)
    values.pop("seq")
    result = await connection.execute(insert(FileRow).values(values).returning(FileRow.seq))
    return dataclasses.replace(record, seq=result.scalar_one())


class MetadataStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    def _transaction(self) -> contextlib.AbstractAsyncContextManager[AsyncConnection]:
        return transaction(self._engine)

    async def ping(self) -> None:
        async with self._transaction() as connection:
            await connection.execute(select(1))

    async def insert_file(self, record: FileRecord) -> FileRecord:
        async with self._transaction() as connection:
            return await insert_file_row(connection, record)

    async def get_file(self, file_id: str, now: int) -> FileRecord | None:
        query = select(*_FILE_COLUMNS).where(FileRow.id == file_id, _live(now))
        async with self._transaction() as connection:
            row = (await connection.execute(query)).first()
        return _record(row) if row else None

    async def list_files(
        self, *, purpose: str | None, after: str | None, limit: int, order: Order, now: int
    ) -> tuple[list[FileRecord], bool]:
        """One page in `(created_at, seq)` order and whether more follow."""
        async with self._transaction() as connection:
            query = select(*_FILE_COLUMNS).where(_live(now))
            if purpose is not None:
                query = query.where(FileRow.purpose == purpose)
            if after is not None:
                position = await self._position(connection, after)
                query = _after(query, position, order)
            key = (FileRow.created_at, FileRow.seq)
            query = query.order_by(*(k.desc() if order == "desc" else k.asc() for k in key))
            rows = (await connection.execute(query.limit(limit + 1))).all()
        return [_record(r) for r in rows[:limit]], len(rows) > limit

    async def _position(self, connection: AsyncConnection, file_id: str) -> Position:
        for table in (FileRow, FileTombstone):
            query = select(table.created_at, table.seq).where(table.id == file_id)
            row = (await connection.execute(query)).first()
            if row:
                return Position(row.created_at, row.seq)
        raise CursorNotFound(file_id)

    async def delete_file(self, file_id: str, now: int) -> FileRecord | None:
        """Delete a live file's row, leaving a tombstone; None if there was no live file."""
        async with self._transaction() as connection:
            deleted = await self._delete_where(connection, FileRow.id == file_id, _live(now), now=now)
        return deleted[0] if deleted else None

    async def take_expired(self, now: int, limit: int = 500) -> list[FileRecord]:
        """Delete up to `limit` expired rows and return them, so their blobs can be removed."""
        expired = select(FileRow.seq).where(FileRow.expires_at <= now).limit(limit)
        async with self._transaction() as connection:
            return await self._delete_where(connection, FileRow.seq.in_(expired.scalar_subquery()), now=now)

    async def purge_tombstones(self, before: int) -> None:
        async with self._transaction() as connection:
            await connection.execute(delete(FileTombstone).where(FileTombstone.deleted_at < before))

    async def _delete_where(
        self, connection: AsyncConnection, *conditions: Any, now: int
    ) -> list[FileRecord]:
        # DELETE … RETURNING takes the write lock first, so concurrent deleters never both win.
        result = await connection.execute(delete(FileRow).where(*conditions).returning(*_FILE_COLUMNS))
        records = [_record(r) for r in result.all()]
        if records:
            await connection.execute(
                insert(FileTombstone),
                [{"id": r.id, "seq": r.seq, "created_at": r.created_at, "deleted_at": now} for r in records],
            )
        return records

    async def all_blob_keys(self) -> Sequence[str]:
        async with self._transaction() as connection:
            return (await connection.execute(select(FileRow.blob_key))).scalars().all()


def _after(query: Select[Any], position: Position, order: Order) -> Select[Any]:
    key = tuple_(FileRow.created_at, FileRow.seq)
    bound = tuple_(position.created_at, position.seq)
    return query.where(key < bound if order == "desc" else key > bound)
