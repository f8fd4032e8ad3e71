"""`BatchStore`: the SQL of batches, their runners' leases and their finished requests.

A runner takes a batch with one conditional UPDATE (`… WHERE lease_owner IS NULL OR
lease_expires_at < now`; on PostgreSQL the candidate is chosen `FOR UPDATE SKIP LOCKED`, so
replicas never queue on the same row). Every later write of the runner is conditional on
still holding the lease, and results are recorded in the same transaction as the counters
they move, so a runner that lost its batch can never write, and a restart resumes exactly
after the last recorded result.
"""

import dataclasses
import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, delete, insert, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.errors import CursorNotFound, LeaseLost
from app.core.records import (
    ACTIVE_BATCH,
    BatchLineError,
    BatchRecord,
    Event,
    FileRecord,
    LineResult,
    Quota,
    TokenUsage,
)
from app.metadata.engine import transaction
from app.metadata.store import insert_file_row
from app.metadata.tables import BatchResultRow, BatchRow
from app.metadata.webhooks_store import insert_events

_USAGE_FIELDS = [f.name for f in dataclasses.fields(TokenUsage)]
_PLAIN_FIELDS = [
    f.name for f in dataclasses.fields(BatchRecord) if f.name not in ("metadata", "errors", "usage")
]
_COLUMNS = [
    *(getattr(BatchRow, name) for name in _PLAIN_FIELDS),
    BatchRow.metadata_json,
    BatchRow.errors_json,
    *(getattr(BatchRow, name) for name in _USAGE_FIELDS),
]


def _record(row: Any) -> BatchRecord:
    values = dict(row._mapping)
    metadata, errors = values.pop("metadata_json"), values.pop("errors_json")
    usage = TokenUsage(**{name: values.pop(name) for name in _USAGE_FIELDS})
    return BatchRecord(
        **values,
        metadata=json.loads(metadata) if metadata is not None else None,
        errors=tuple(BatchLineError(**e) for e in json.loads(errors)) if errors else (),
        usage=usage,
    )


def _row_values(record: BatchRecord) -> dict[str, Any]:
    values = {name: getattr(record, name) for name in _PLAIN_FIELDS if name != "seq"}
    values.update(dataclasses.asdict(record.usage))
    values["metadata_json"] = json.dumps(record.metadata) if record.metadata is not None else None
    values["errors_json"] = _errors_json(record.errors)
    return values


def _errors_json(errors: Sequence[BatchLineError]) -> str | None:
    return json.dumps([dataclasses.asdict(e) for e in errors]) if errors else None


def _held(batch_id: str, owner: str) -> tuple[ColumnElement[bool], ...]:
    return (BatchRow.id == batch_id, BatchRow.lease_owner == owner)


class BatchStore:
    def __init__(self, engine: AsyncEngine, quota: Quota | None = None) -> None:
        self._engine = engine
        self.quota = quota or Quota()

    async def insert_batch(self, record: BatchRecord) -> BatchRecord:
        async with transaction(self._engine) as connection:
            result = await connection.execute(
                insert(BatchRow).values(_row_values(record)).returning(BatchRow.seq)
            )
        return dataclasses.replace(record, seq=result.scalar_one())

    async def get_batch(self, batch_id: str) -> BatchRecord | None:
        async with transaction(self._engine) as connection:
            row = (await connection.execute(select(*_COLUMNS).where(BatchRow.id == batch_id))).first()
        return _record(row) if row else None

    async def list_batches(
        self, project: str, *, after: str | None, limit: int
    ) -> tuple[list[BatchRecord], bool]:
        """Newest first; `after` a batch id of this project."""
        query = select(*_COLUMNS).where(BatchRow.project == project)
        async with transaction(self._engine) as connection:
            if after is not None:
                position = (
                    await connection.execute(
                        select(BatchRow.created_at, BatchRow.seq).where(
                            BatchRow.id == after, BatchRow.project == project
                        )
                    )
                ).first()
                if position is None:
                    raise CursorNotFound(after)
                query = query.where(tuple_(BatchRow.created_at, BatchRow.seq) < tuple_(*position))
            query = query.order_by(BatchRow.created_at.desc(), BatchRow.seq.desc()).limit(limit + 1)
            rows = (await connection.execute(query)).all()
        return [_record(r) for r in rows[:limit]], len(rows) > limit

    async def request_cancel(self, batch_id: str, now: int) -> bool:
        """Move a batch that has not begun finalizing to `cancelling`; False if it had."""
        async with transaction(self._engine) as connection:
            result = await connection.execute(
                update(BatchRow)
                .where(BatchRow.id == batch_id, BatchRow.status.in_(("validating", "in_progress")))
                .values(status="cancelling", cancelling_at=now)
            )
        return result.rowcount == 1

    async def claim(self, owner: str, now: int, lease_seconds: int) -> BatchRecord | None:
        """Take the oldest active batch no live runner holds, or None."""
        free = or_(BatchRow.lease_owner.is_(None), BatchRow.lease_expires_at < now)
        candidate = (
            select(BatchRow.seq)
            .where(BatchRow.status.in_(ACTIVE_BATCH), free)
            .order_by(BatchRow.seq)
            .limit(1)
            .with_for_update(skip_locked=True)  # PostgreSQL; SQLite serialises writers anyway
        )
        async with transaction(self._engine) as connection:
            seq = (await connection.execute(candidate)).scalar()
            if seq is None:
                return None
            taken = await connection.execute(
                update(BatchRow)
                .where(BatchRow.seq == seq, free)
                .values(lease_owner=owner, lease_expires_at=now + lease_seconds)
                .returning(*_COLUMNS)
            )
            row = taken.first()
        return _record(row) if row else None

    async def renew(self, batch_id: str, owner: str, now: int, lease_seconds: int) -> str:
        """Extend the lease; the batch's status (a cancel shows here). `LeaseLost` if not held."""
        async with transaction(self._engine) as connection:
            result = await connection.execute(
                update(BatchRow)
                .where(*_held(batch_id, owner))
                .values(lease_expires_at=now + lease_seconds)
                .returning(BatchRow.status)
            )
            status = result.scalar()
        if status is None:
            raise LeaseLost(batch_id)
        return str(status)

    async def release(self, owner: str) -> None:
        """Give up every lease `owner` holds (a server shutting down)."""
        async with transaction(self._engine) as connection:
            await connection.execute(
                update(BatchRow)
                .where(BatchRow.lease_owner == owner)
                .values(lease_owner=None, lease_expires_at=None)
            )

    async def update_held(self, batch_id: str, owner: str, from_status: str, **values: Any) -> bool:
        """Change a held batch still in `from_status`; False if it is not (a cancel came first)."""
        if "errors" in values:
            values["errors_json"] = _errors_json(values.pop("errors"))
        held = (*_held(batch_id, owner), BatchRow.status == from_status)
        async with transaction(self._engine) as connection:
            result = await connection.execute(update(BatchRow).where(*held).values(values))
        return result.rowcount == 1

    async def record_results(
        self, batch_id: str, owner: str, results: Sequence[LineResult], now: int, lease_seconds: int
    ) -> str:
        """Record finished requests with their counters and usage, renewing the lease, in one
        transaction; the batch's status. `LeaseLost` (nothing written) if not held."""
        usage = sum((r.usage for r in results), TokenUsage())
        ok = sum(1 for r in results if r.ok)
        counters = {
            name: getattr(BatchRow, name) + value for name, value in dataclasses.asdict(usage).items()
        }
        async with transaction(self._engine) as connection:
            result = await connection.execute(
                update(BatchRow)
                .where(*_held(batch_id, owner))
                .values(
                    completed=BatchRow.completed + ok,
                    failed=BatchRow.failed + (len(results) - ok),
                    lease_expires_at=now + lease_seconds,
                    **counters,
                )
                .returning(BatchRow.status)
            )
            status = result.scalar()
            if status is None:
                raise LeaseLost(batch_id)
            if results:
                rows = [{"batch_id": batch_id, "line": r.line, "ok": r.ok, "text": r.text} for r in results]
                await connection.execute(insert(BatchResultRow), rows)
        return str(status)

    async def finished_lines(self, batch_id: str) -> set[int]:
        async with transaction(self._engine) as connection:
            rows = await connection.execute(
                select(BatchResultRow.line).where(BatchResultRow.batch_id == batch_id)
            )
            return set(rows.scalars().all())

    async def results(self, batch_id: str, *, ok: bool, after_line: int, limit: int) -> list[tuple[int, str]]:
        """A page of recorded results in line order: `(line, text)`."""
        query = (
            select(BatchResultRow.line, BatchResultRow.text)
            .where(
                BatchResultRow.batch_id == batch_id, BatchResultRow.ok == ok, BatchResultRow.line > after_line
            )
            .order_by(BatchResultRow.line)
            .limit(limit)
        )
        async with transaction(self._engine) as connection:
            return [(int(line), str(text)) for line, text in (await connection.execute(query)).all()]

    async def attach_file(
        self, batch_id: str, owner: str, column: str, file: FileRecord, events: Sequence[Event] = ()
    ) -> FileRecord:
        """Record the batch's output or error file (and `events`) and name it on the batch, in one
        transaction, so a finalization that is run again never makes the same file twice."""
        async with transaction(self._engine) as connection:
            named = await connection.execute(
                update(BatchRow).where(*_held(batch_id, owner)).values({column: file.id})
            )
            if named.rowcount != 1:
                raise LeaseLost(batch_id)
            return await insert_file_row(connection, file, self.quota, events)

    async def finish(
        self, batch_id: str, owner: str, from_status: str, *, events: Sequence[Event] = (), **values: Any
    ) -> bool:
        """Put a held batch still in `from_status` in its final state, with `events` in the
        webhook outbox; drop its recorded results and its lease. False if it is no longer in
        `from_status`."""
        if "errors" in values:
            values["errors_json"] = _errors_json(values.pop("errors"))
        held = (*_held(batch_id, owner), BatchRow.status == from_status)
        async with transaction(self._engine) as connection:
            done = await connection.execute(
                update(BatchRow).where(*held).values(lease_owner=None, lease_expires_at=None, **values)
            )
            if done.rowcount != 1:
                return False
            await connection.execute(delete(BatchResultRow).where(BatchResultRow.batch_id == batch_id))
            await insert_events(connection, events)
        return True
