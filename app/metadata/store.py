"""`MetadataStore`: the only code that runs SQL. It hands out plain records, never ORM objects."""

import contextlib
import dataclasses
import functools
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Select, bindparam, delete, insert, or_, select, tuple_
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
    return FileRecord(*row)  # columns are selected in FileRecord's field order


def _live(now: Any) -> Any:
    """Not expired at `now` (a value, or `bindparam("now")` in statements built once)."""
    return or_(FileRow.expires_at.is_(None), FileRow.expires_at > now)


@contextlib.contextmanager
def _database_errors() -> Iterator[None]:
    """Database failures become `StorageUnavailable` here and only here."""
    try:
        yield
    except (OperationalError, DBAPIError, OSError) as exc:
        raise StorageUnavailable("The metadata database is unavailable. Please retry.") from exc


@contextlib.asynccontextmanager
async def transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """One transaction, committed when the block ends without an error."""
    with _database_errors():
        async with engine.begin() as connection:
            yield connection


@contextlib.asynccontextmanager
async def reading(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection for reads only: no explicit BEGIN/COMMIT round trips."""
    with _database_errors():
        async with engine.connect() as connection:
            yield connection


async def insert_file_row(connection: AsyncConnection, record: FileRecord) -> FileRecord:
    """Insert a file's row inside the caller's transaction; the record comes back with its `seq`."""
    values = dataclasses.asdict(record)
    values.pop("seq")
    result = await connection.execute(insert(FileRow).values(values).returning(FileRow.seq))
    return dataclasses.replace(record, seq=result.scalar_one())


# Built once: SQLAlchemy then reuses the compiled SQL for every request.
_GET_LIVE_FILE = select(*_FILE_COLUMNS).where(FileRow.id == bindparam("file_id"), _live(bindparam("now")))
_CURSOR_POSITION = (
    select(FileRow.created_at, FileRow.seq)
    .where(FileRow.id == bindparam("file_id"))
    .union_all(
        select(FileTombstone.created_at, FileTombstone.seq).where(FileTombstone.id == bindparam("file_id"))
    )
    .limit(1)
)


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
        async with reading(self._engine) as connection:
            row = (await connection.execute(_GET_LIVE_FILE, {"file_id": file_id, "now": now})).first()
        return _record(row) if row else None

    async def list_files(
        self, *, purpose: str | None, after: str | None, limit: int, order: Order, now: int
    ) -> tuple[list[FileRecord], bool]:
        """One page in `(created_at, seq)` order and whether more follow."""
        params: dict[str, object] = {"now": now, "purpose": purpose, "limit": limit + 1}
        async with reading(self._engine) as connection:
            if after is not None:
                position = await self._position(connection, after)
                params.update(after_created_at=position.created_at, after_seq=position.seq)
            query = _list_query(filter_purpose=purpose is not None, paged=after is not None, order=order)
            rows = (await connection.execute(query, params)).all()
        return [_record(r) for r in rows[:limit]], len(rows) > limit

    async def _position(self, connection: AsyncConnection, file_id: str) -> Position:
        row = (await connection.execute(_CURSOR_POSITION, {"file_id": file_id})).first()
        if row is None:
            raise CursorNotFound(file_id)
        return Position(row.created_at, row.seq)

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


@functools.cache
def _list_query(*, filter_purpose: bool, paged: bool, order: Order) -> Select[Any]:
    """One of the eight shapes of a list page, built once with bound parameters."""
    query = select(*_FILE_COLUMNS).where(_live(bindparam("now")))
    if filter_purpose:
        query = query.where(FileRow.purpose == bindparam("purpose"))
    if paged:
        key = tuple_(FileRow.created_at, FileRow.seq)
        bound = tuple_(bindparam("after_created_at"), bindparam("after_seq"))
        query = query.where(key < bound if order == "desc" else key > bound)
    sort = (FileRow.created_at, FileRow.seq)
    query = query.order_by(*(k.desc() if order == "desc" else k.asc() for k in sort))
    return query.limit(bindparam("limit"))
