"""`MetadataStore`: the only code that runs SQL. It hands out plain records, never ORM objects."""

import contextlib
import dataclasses
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, bindparam, delete, func, insert, or_, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.core.errors import CursorNotFound, OverQuota
from app.core.records import Event, FileRecord, Order, ProjectUsage, Quota
from app.metadata.engine import reading, transaction
from app.metadata.readers import reader_for
from app.metadata.tables import FileRow, FileTombstone, ProjectRow
from app.metadata.webhooks_store import insert_events

# What to tell webhooks about a file a statement removed; None: nothing.
Announce = Callable[[FileRecord], Event] | None


@dataclass(frozen=True)
class Position:
    """A place in list order: `(created_at, seq)`."""

    created_at: int
    seq: int


_FILE_COLUMNS = [getattr(FileRow, f.name) for f in dataclasses.fields(FileRecord)]


def _record(row: Any) -> FileRecord:
    return FileRecord(*row)  # columns are selected in FileRecord's field order


def _live(now: Any) -> Any:
    """Not expired at `now` (a value, or `bindparam("now")` in statements built once)."""
    return or_(FileRow.expires_at.is_(None), FileRow.expires_at > now)


async def insert_file_row(
    connection: AsyncConnection, record: FileRecord, quota: Quota, events: Sequence[Event] = ()
) -> FileRecord:
    """Insert a file's row inside the caller's transaction, charging it to its project's quota;
    `events` enter the webhook outbox in the same transaction.

    The record comes back with its `seq`. Raises `OverQuota` (the caller rolls back).
    """
    await _charge(connection, record.project, record.bytes, quota)
    values = dataclasses.asdict(record)
    values.pop("seq")
    result = await connection.execute(insert(FileRow).values(values).returning(FileRow.seq))
    await insert_events(connection, events)
    return dataclasses.replace(record, seq=result.scalar_one())


async def _charge(connection: AsyncConnection, project: str, size: int, quota: Quota) -> None:
    """Add one file of `size` bytes to the project's usage if it stays within its quota.

    One conditional UPDATE: it takes the row's write lock, and a racing writer re-checks the
    condition against the committed usage, so concurrent uploads can never overshoot.
    """
    fits = (ProjectRow.bytes_used + size <= func.coalesce(ProjectRow.max_bytes, quota.max_bytes)) & (
        ProjectRow.files_used + 1 <= func.coalesce(ProjectRow.max_files, quota.max_files)
    )
    charge = (
        update(ProjectRow)
        .where(ProjectRow.name == project, fits)
        .values(bytes_used=ProjectRow.bytes_used + size, files_used=ProjectRow.files_used + 1)
    )
    if (await connection.execute(charge)).rowcount == 1:
        return
    # No row matched: over quota, or a project's first file (then create its row and charge again).
    await ensure_project(connection, project)
    if (await connection.execute(charge)).rowcount != 1:
        raise OverQuota(await project_usage(connection, project, quota), size)


async def ensure_project(connection: AsyncConnection, project: str) -> None:
    """Create the project's row (zero usage, default quota) unless it exists."""
    module = postgresql if connection.dialect.name == "postgresql" else sqlite
    await connection.execute(
        module.insert(ProjectRow)
        .values(name=project, bytes_used=0, files_used=0)
        .on_conflict_do_nothing(index_elements=["name"])
    )


async def project_usage(connection: AsyncConnection, project: str, quota: Quota) -> ProjectUsage:
    row = (await connection.execute(select(*_PROJECT_COLUMNS).where(ProjectRow.name == project))).first()
    return _usage(row, quota) if row else ProjectUsage(project, 0, 0, quota.max_bytes, quota.max_files)


_PROJECT_COLUMNS: list[Any] = [
    *(
        ProjectRow.name,
        ProjectRow.bytes_used,
        ProjectRow.files_used,
        ProjectRow.max_bytes,
        ProjectRow.max_files,
    )
]


def _usage(row: Any, quota: Quota) -> ProjectUsage:
    name, used_bytes, used_files, max_bytes, max_files = row
    return ProjectUsage(
        name,
        used_bytes,
        used_files,
        quota.max_bytes if max_bytes is None else max_bytes,
        quota.max_files if max_files is None else max_files,
    )


async def _release(connection: AsyncConnection, records: list[FileRecord]) -> None:
    """Give the quota of deleted or expired files back to their projects."""
    freed: dict[str, tuple[int, int]] = {}
    for record in records:
        size, count = freed.get(record.project, (0, 0))
        freed[record.project] = (size + record.bytes, count + 1)
    for project, (size, count) in freed.items():
        await connection.execute(
            update(ProjectRow)
            .where(ProjectRow.name == project)
            .values(bytes_used=ProjectRow.bytes_used - size, files_used=ProjectRow.files_used - count)
        )


# Built once: SQLAlchemy then reuses the compiled SQL for every request.
_GET_LIVE_FILE = select(*_FILE_COLUMNS).where(
    FileRow.id == bindparam("file_id"), FileRow.project == bindparam("project"), _live(bindparam("now"))
)
_CURSOR_POSITION = (
    select(FileRow.created_at, FileRow.seq)
    .where(FileRow.id == bindparam("after"), FileRow.project == bindparam("project"))
    .union_all(
        select(FileTombstone.created_at, FileTombstone.seq).where(
            FileTombstone.id == bindparam("after"), FileTombstone.project == bindparam("project")
        )
    )
    .limit(1)
)


class MetadataStore:
    """Every file query is scoped to one project: another project's ids do not exist here."""

    def __init__(self, engine: AsyncEngine, quota: Quota | None = None) -> None:
        self._engine = engine
        self._reader = reader_for(engine)  # the hot reads: retrieve, list, cursors
        self.quota = quota or Quota()

    def _transaction(self) -> contextlib.AbstractAsyncContextManager[AsyncConnection]:
        return transaction(self._engine)

    async def ping(self) -> None:
        async with self._transaction() as connection:
            await connection.execute(select(1))

    async def insert_file(self, record: FileRecord, events: Sequence[Event] = ()) -> FileRecord:
        async with self._transaction() as connection:
            return await insert_file_row(connection, record, self.quota, events)

    async def get_file(self, project: str, file_id: str, now: int) -> FileRecord | None:
        rows = await self._reader.rows(_GET_LIVE_FILE, {"file_id": file_id, "project": project, "now": now})
        return _record(rows[0]) if rows else None

    async def list_files(
        self, project: str, *, purpose: str | None, after: str | None, limit: int, order: Order, now: int
    ) -> tuple[list[FileRecord], bool]:
        """One page in `(created_at, seq)` order and whether more follow."""
        params = {"project": project, "now": now, "purpose": purpose, "after": after, "limit": limit + 1}
        query = _list_query(filter_purpose=purpose is not None, paged=after is not None, order=order)
        rows = await self._reader.rows(query, params)
        if not rows and after is not None:
            await self._position(project, after)  # an empty page, or a cursor that names no file
        return [_record(r) for r in rows[:limit]], len(rows) > limit

    async def _position(self, project: str, file_id: str) -> Position:
        """Where a live or deleted file sits in list order; positions never change."""
        rows = await self._reader.rows(_CURSOR_POSITION, {"after": file_id, "project": project})
        if not rows:
            raise CursorNotFound(file_id)
        return Position(*rows[0])

    async def delete_file(
        self, project: str, file_id: str, now: int, announce: Announce = None
    ) -> FileRecord | None:
        """Delete a live file's row, leaving a tombstone; None if there was no live file."""
        async with self._transaction() as connection:
            deleted = await self._delete_where(
                connection,
                FileRow.id == file_id,
                FileRow.project == project,
                _live(now),
                now=now,
                announce=announce,
            )
        return deleted[0] if deleted else None

    async def usage(self, project: str) -> ProjectUsage:
        async with reading(self._engine) as connection:
            return await project_usage(connection, project, self.quota)

    async def all_usage(self) -> list[ProjectUsage]:
        async with reading(self._engine) as connection:
            rows = (await connection.execute(select(*_PROJECT_COLUMNS).order_by(ProjectRow.name))).all()
        return [_usage(row, self.quota) for row in rows]

    async def set_quota(self, project: str, *, max_bytes: int | None, max_files: int | None) -> None:
        """Override the project's limits; a None leaves that limit as it is."""
        values = {"max_bytes": max_bytes, "max_files": max_files}
        async with self._transaction() as connection:
            await ensure_project(connection, project)
            changes = {name: value for name, value in values.items() if value is not None}
            if changes:
                await connection.execute(update(ProjectRow).where(ProjectRow.name == project).values(changes))

    async def take_expired(
        self, now: int, limit: int = 500, project: str | None = None, announce: Announce = None
    ) -> list[FileRecord]:
        """Delete up to `limit` expired rows (of one project, or all) and return them, so their
        blobs can be removed."""
        expired = select(FileRow.seq).where(FileRow.expires_at <= now)
        if project is not None:
            expired = expired.where(FileRow.project == project)
        async with self._transaction() as connection:
            chosen = FileRow.seq.in_(expired.limit(limit).scalar_subquery())
            return await self._delete_where(connection, chosen, now=now, announce=announce)

    async def record_sha256(self, file_id: str, sha256: str) -> bool:
        """Fill in a file's hash once known; False if it was known already or the row is gone.
        Conditional, so two processes hashing the same file both succeed harmlessly."""
        statement = (
            update(FileRow).where(FileRow.id == file_id, FileRow.sha256.is_(None)).values(sha256=sha256)
        )
        async with self._transaction() as connection:
            return bool((await connection.execute(statement)).rowcount)

    async def unhashed_page(self, after_seq: int, limit: int) -> list[FileRecord]:
        """Up to `limit` rows of every project whose hash is not known yet, in `seq` order."""
        query = (
            select(*_FILE_COLUMNS)
            .where(FileRow.sha256.is_(None), FileRow.seq > after_seq)
            .order_by(FileRow.seq)
            .limit(limit)
        )
        async with reading(self._engine) as connection:
            return [_record(row) for row in (await connection.execute(query)).all()]

    async def purge_tombstones(self, before: int) -> None:
        async with self._transaction() as connection:
            await connection.execute(delete(FileTombstone).where(FileTombstone.deleted_at < before))

    async def _delete_where(
        self, connection: AsyncConnection, *conditions: Any, now: int, announce: Announce = None
    ) -> list[FileRecord]:
        # DELETE … RETURNING takes the write lock first, so concurrent deleters never both win.
        result = await connection.execute(delete(FileRow).where(*conditions).returning(*_FILE_COLUMNS))
        records = [_record(r) for r in result.all()]
        if records:
            tombstones = [
                {
                    "id": r.id,
                    "project": r.project,
                    "seq": r.seq,
                    "created_at": r.created_at,
                    "deleted_at": now,
                }
                for r in records
            ]
            await connection.execute(insert(FileTombstone), tombstones)
            await _release(connection, records)
            if announce is not None:
                await insert_events(connection, [announce(r) for r in records])
        return records


@functools.cache
def _list_query(*, filter_purpose: bool, paged: bool, order: Order) -> Select[Any]:
    """One of the eight shapes of a list page, built once with bound parameters."""
    query = select(*_FILE_COLUMNS).where(FileRow.project == bindparam("project"), _live(bindparam("now")))
    if filter_purpose:
        query = query.where(FileRow.purpose == bindparam("purpose"))
    if paged:
        # The cursor's position is looked up in the same statement (one round trip, one
        # snapshot). Each half is a scalar subquery, which PostgreSQL runs once, before the
        # scan, so the comparison still bounds the index scan.
        position = _CURSOR_POSITION.cte("position")
        key = tuple_(FileRow.created_at, FileRow.seq)
        after_created_at = select(position.c.created_at).scalar_subquery()
        after_seq = select(position.c.seq).scalar_subquery()
        bound = tuple_(after_created_at, after_seq)
        query = query.where(key < bound if order == "desc" else key > bound)
    sort = (FileRow.created_at, FileRow.seq)
    query = query.order_by(*(k.desc() if order == "desc" else k.asc() for k in sort))
    return query.limit(bindparam("limit"))
