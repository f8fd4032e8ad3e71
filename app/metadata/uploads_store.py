"""`UploadStore`: the SQL of OpenAI Uploads and their Parts. Plain records in, plain records out.

Every state change is one conditional UPDATE (`… WHERE status = 'pending' AND expires_at > now`),
so parallel parts, a cancel and the sweeper can race without locks held across requests: the
database decides who wins, and the loser reads the row again to say why.
"""

import dataclasses
import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, insert, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.core.errors import ClaimLost
from app.core.records import Event, FileRecord, PartRecord, Quota, UploadRecord
from app.metadata.engine import transaction
from app.metadata.store import insert_file_row
from app.metadata.tables import UploadPartRow, UploadRow

FINISHED = ("completed", "cancelled", "expired")


_UPLOAD_COLUMNS = [getattr(UploadRow, f.name) for f in dataclasses.fields(UploadRecord)]
_PART_COLUMNS = [getattr(UploadPartRow, f.name) for f in dataclasses.fields(PartRecord)]


def _upload(row: Any) -> UploadRecord:
    return _upload_of(dict(row._mapping))


def _upload_of(values: dict[str, Any]) -> UploadRecord:
    raw_ids = values.pop("part_ids")
    return UploadRecord(**values, part_ids=tuple(json.loads(raw_ids)) if raw_ids is not None else None)


def _open(upload_id: str, now: int) -> tuple[Any, ...]:
    return (UploadRow.id == upload_id, UploadRow.status == "pending", UploadRow.expires_at > now)


class UploadStore:
    """Looks Uploads up by id alone: `UploadService` hides another project's Uploads."""

    def __init__(self, engine: AsyncEngine, quota: Quota | None = None) -> None:
        self._engine = engine
        self.quota = quota or Quota()

    async def insert_upload(self, record: UploadRecord) -> None:
        values = dataclasses.asdict(record)
        values["part_ids"] = None
        async with transaction(self._engine) as connection:
            await connection.execute(insert(UploadRow).values(values))

    async def get_upload(self, upload_id: str) -> UploadRecord | None:
        async with transaction(self._engine) as connection:
            row = (
                await connection.execute(select(*_UPLOAD_COLUMNS).where(UploadRow.id == upload_id))
            ).first()
        return _upload(row) if row else None

    async def add_part(self, part: PartRecord, now: int, *, at_offset: int | None = None) -> bool:
        """Record a Part if its Upload is open and has room for it; False (nothing stored) if not.

        With `at_offset` (protocols whose chunks arrive in order, like Gemini's resumable uploads)
        the Upload must also have received exactly that many bytes, so a repeated or racing chunk
        for the same offset loses and the Parts tile the file exactly.
        """
        fits = UploadRow.received_bytes + part.bytes <= UploadRow.bytes
        if at_offset is not None:
            fits = fits & (UploadRow.received_bytes == at_offset)
        grow = update(UploadRow).where(*_open(part.upload_id, now), fits)
        async with transaction(self._engine) as connection:
            # The UPDATE takes the row's write lock first, so parallel parts never overfill.
            result = await connection.execute(
                grow.values(received_bytes=UploadRow.received_bytes + part.bytes)
            )
            if result.rowcount != 1:
                return False
            await connection.execute(insert(UploadPartRow).values(dataclasses.asdict(part)))
        return True

    async def list_pending(
        self, project: str, now: int, *, after: str | None, limit: int
    ) -> list[tuple[UploadRecord, int]]:
        """Up to `limit` of the project's open Uploads in creation order, after the Upload `after`,
        each with how many Parts it holds (their bytes are its `received_bytes`)."""
        parts = (
            select(func.count())
            .where(UploadPartRow.upload_id == UploadRow.id)
            .scalar_subquery()
            .label("part_count")
        )
        open_ = UploadRow.status.in_(("pending", "completing")) & (UploadRow.expires_at > now)
        query = select(*_UPLOAD_COLUMNS, parts).where(UploadRow.project == project, open_)
        if after is not None:
            position = select(UploadRow.created_at, UploadRow.id).where(UploadRow.id == after).subquery()
            query = query.where(
                tuple_(UploadRow.created_at, UploadRow.id)
                > tuple_(select(position.c.created_at).scalar_subquery(), after)
            )
        query = query.order_by(UploadRow.created_at, UploadRow.id).limit(limit)
        async with transaction(self._engine) as connection:
            rows = (await connection.execute(query)).all()
        pending = []
        for row in rows:
            values = dict(row._mapping)
            part_count = values.pop("part_count")
            pending.append((_upload_of(values), part_count))
        return pending

    async def parts_in_id_order(self, upload_id: str) -> list[PartRecord]:
        """Every Part of the Upload, ordered by id (ids that start with a padded offset sort by it)."""
        query = select(*_PART_COLUMNS).where(UploadPartRow.upload_id == upload_id).order_by(UploadPartRow.id)
        async with transaction(self._engine) as connection:
            rows = (await connection.execute(query)).all()
        return [PartRecord(**row._mapping) for row in rows]

    async def parts_of(self, upload_id: str, part_ids: Sequence[str]) -> dict[str, PartRecord]:
        """Those of `part_ids` that are Parts of this Upload, by id."""
        query = select(*_PART_COLUMNS).where(
            UploadPartRow.upload_id == upload_id, UploadPartRow.id.in_(part_ids)
        )
        async with transaction(self._engine) as connection:
            rows = (await connection.execute(query)).all()
        return {row.id: PartRecord(**row._mapping) for row in rows}

    async def claim(self, upload_id: str, now: int) -> bool:
        """Move an open Upload to `completing`, so no Part, cancel or expiry can touch it meanwhile."""
        async with transaction(self._engine) as connection:
            result = await connection.execute(
                update(UploadRow).where(*_open(upload_id, now)).values(status="completing")
            )
        return result.rowcount == 1

    async def release(self, upload_id: str) -> None:
        """Give a failed completion's claim back: the Upload is `pending` again."""
        async with transaction(self._engine) as connection:
            await connection.execute(
                update(UploadRow)
                .where(UploadRow.id == upload_id, UploadRow.status == "completing")
                .values(status="pending")
            )

    async def finish(
        self,
        upload_id: str,
        file: FileRecord,
        part_ids: Sequence[str],
        md5: str | None,
        events: Sequence[Event] = (),
    ) -> tuple[FileRecord, list[str]]:
        """In one transaction: the File's row (and `events`), the Upload completed, its Parts' rows gone.

        Returns the File and the blob keys of the Parts, which the caller removes.
        """
        done = {"status": "completed", "file_id": file.id, "part_ids": json.dumps(list(part_ids)), "md5": md5}
        claimed = (UploadRow.id == upload_id, UploadRow.status == "completing")
        async with transaction(self._engine) as connection:
            if (await connection.execute(update(UploadRow).where(*claimed).values(done))).rowcount != 1:
                raise ClaimLost(upload_id)
            record = await insert_file_row(connection, file, self.quota, events)
            keys = await _drop_parts(connection, [upload_id])
        return record, keys

    async def cancel(self, upload_id: str, now: int) -> list[str] | None:
        """Cancel an open Upload and drop its Parts' rows; their blob keys, or None if not open."""
        async with transaction(self._engine) as connection:
            result = await connection.execute(
                update(UploadRow).where(*_open(upload_id, now)).values(status="cancelled")
            )
            if result.rowcount != 1:
                return None
            return await _drop_parts(connection, [upload_id])

    async def expire(
        self, now: int, *, stuck_before: int, upload_id: str | None = None, limit: int = 500
    ) -> tuple[int, list[str]]:
        """Mark up to `limit` lapsed Uploads expired and drop their Parts' rows.

        A `completing` Upload lapses only once `expires_at` is before `stuck_before`: its
        completion has died. Returns how many expired and their Parts' blob keys.
        """
        lapsed = or_(
            (UploadRow.status == "pending") & (UploadRow.expires_at <= now),
            (UploadRow.status == "completing") & (UploadRow.expires_at < stuck_before),
        )
        query = select(UploadRow.id).where(lapsed)
        if upload_id is not None:
            query = query.where(UploadRow.id == upload_id)
        chosen = query.limit(limit).scalar_subquery()
        async with transaction(self._engine) as connection:
            result = await connection.execute(
                update(UploadRow)
                .where(UploadRow.id.in_(chosen), lapsed)
                .values(status="expired")
                .returning(UploadRow.id)
            )
            ids = list(result.scalars().all())
            keys = await _drop_parts(connection, ids) if ids else []
        return len(ids), keys

    async def purge(self, before: int) -> None:
        """Forget finished Uploads that expired before `before`."""
        async with transaction(self._engine) as connection:
            await connection.execute(
                delete(UploadRow).where(UploadRow.status.in_(FINISHED), UploadRow.expires_at < before)
            )


async def _drop_parts(connection: AsyncConnection, upload_ids: Sequence[str]) -> list[str]:
    result = await connection.execute(
        delete(UploadPartRow).where(UploadPartRow.upload_id.in_(upload_ids)).returning(UploadPartRow.blob_key)
    )
    return list(result.scalars().all())
