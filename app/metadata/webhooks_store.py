"""`WebhookStore`: the SQL of webhook endpoints and of the outbox of their deliveries.

`insert_events` is how an event enters the outbox: it runs inside the caller's transaction
(the file row's insert or delete, a batch's change of state), so an event is recorded if and
only if the change it reports is. It writes one delivery row per endpoint of the project that
asked for the event's type.

Deliverers share the outbox by claiming rows: one conditional UPDATE sets `lease_owner` and
moves `next_attempt_at` past the attempt, so another replica's claim no longer matches them
(on PostgreSQL the candidate rows are also locked `FOR UPDATE SKIP LOCKED`, so claimers do not
queue behind each other). A deliverer that dies mid-attempt leaves its rows to be claimed
again when the lease runs out: delivery is at least once.
"""

import dataclasses
import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.core import ids
from app.core.records import DeliveryRecord, DueDelivery, Event, WebhookEndpointRecord
from app.metadata.engine import reading, transaction
from app.metadata.tables import WebhookDeliveryRow, WebhookEndpointRow

_ENDPOINT_COLUMNS = [getattr(WebhookEndpointRow, f.name) for f in dataclasses.fields(WebhookEndpointRecord)]
_DELIVERY_COLUMNS = [getattr(WebhookDeliveryRow, f.name) for f in dataclasses.fields(DeliveryRecord)]
Deliveries = WebhookDeliveryRow  # short name for the queries below


def _endpoint(row: Sequence[Any]) -> WebhookEndpointRecord:
    values = list(row)
    values[4] = tuple(json.loads(values[4]))  # event_types
    return WebhookEndpointRecord(*values)


def _due(row: Sequence[Any]) -> DueDelivery:
    seq, delivery_id, event_type, body, created_at, attempts = row[:6]
    return DueDelivery(seq, delivery_id, event_type, body, created_at, attempts, _endpoint(row[6:]))


def _endpoint_values(record: WebhookEndpointRecord) -> dict[str, Any]:
    values = dataclasses.asdict(record)
    values["event_types"] = json.dumps(list(record.event_types))
    return values


async def insert_events(connection: AsyncConnection, events: Sequence[Event]) -> int:
    """Put `events` in the outbox, inside the caller's transaction: one delivery row per
    endpoint of the event's project subscribed to its type. How many rows were written."""
    rows: list[dict[str, Any]] = []
    for project in {event.project for event in events}:
        query = select(WebhookEndpointRow.id, WebhookEndpointRow.event_types).where(
            WebhookEndpointRow.project == project
        )
        endpoints = [
            (endpoint_id, set(json.loads(types))) for endpoint_id, types in await _all(connection, query)
        ]
        for event in events:
            if event.project != project:
                continue
            rows.extend(
                _delivery_row(event, endpoint_id) for endpoint_id, types in endpoints if event.type in types
            )
    if rows:
        await connection.execute(insert(WebhookDeliveryRow), rows)
    return len(rows)


async def _all(connection: AsyncConnection, query: Any) -> Sequence[Any]:
    return (await connection.execute(query)).all()


def _delivery_row(event: Event, endpoint_id: str) -> dict[str, Any]:
    return {
        "id": ids.new_delivery_id(),
        "endpoint_id": endpoint_id,
        "project": event.project,
        "event_id": event.id,
        "event_type": event.type,
        "body": event.body(),
        "created_at": event.created_at,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": float(event.created_at),
    }


class WebhookStore:
    """Endpoints are scoped to a project like files; the outbox is shared by every deliverer."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def insert_endpoint(self, record: WebhookEndpointRecord) -> None:
        async with transaction(self._engine) as connection:
            await connection.execute(insert(WebhookEndpointRow).values(_endpoint_values(record)))

    async def count_endpoints(self, project: str) -> int:
        query = select(func.count()).where(WebhookEndpointRow.project == project)
        async with reading(self._engine) as connection:
            return int((await connection.execute(query)).scalar_one())

    async def get_endpoint(self, project: str, endpoint_id: str) -> WebhookEndpointRecord | None:
        query = select(*_ENDPOINT_COLUMNS).where(
            WebhookEndpointRow.id == endpoint_id, WebhookEndpointRow.project == project
        )
        async with reading(self._engine) as connection:
            row = (await connection.execute(query)).first()
        return _endpoint(row) if row else None

    async def list_endpoints(
        self, project: str, *, after: str | None, limit: int
    ) -> tuple[list[WebhookEndpointRecord], bool] | None:
        """A page, newest first, and whether more follow; None if `after` names no endpoint."""
        query = select(*_ENDPOINT_COLUMNS).where(WebhookEndpointRow.project == project)
        async with reading(self._engine) as connection:
            if after is not None:
                seq = (
                    await connection.execute(
                        select(WebhookEndpointRow.seq).where(
                            WebhookEndpointRow.id == after, WebhookEndpointRow.project == project
                        )
                    )
                ).scalar()
                if seq is None:
                    return None
                query = query.where(WebhookEndpointRow.seq < seq)
            query = query.order_by(WebhookEndpointRow.seq.desc()).limit(limit + 1)
            rows = (await connection.execute(query)).all()
        return [_endpoint(r) for r in rows[:limit]], len(rows) > limit

    async def update_endpoint(self, record: WebhookEndpointRecord) -> bool:
        """Store the endpoint's new values; False if it is gone."""
        values = _endpoint_values(record)
        for fixed in ("id", "project", "created_at"):
            values.pop(fixed)
        async with transaction(self._engine) as connection:
            result = await connection.execute(
                update(WebhookEndpointRow)
                .where(WebhookEndpointRow.id == record.id, WebhookEndpointRow.project == record.project)
                .values(values)
            )
        return bool(result.rowcount == 1)

    async def delete_endpoint(self, project: str, endpoint_id: str) -> bool:
        """Delete the endpoint and its deliveries, pending ones included."""
        async with transaction(self._engine) as connection:
            await connection.execute(delete(Deliveries).where(Deliveries.endpoint_id == endpoint_id))
            result = await connection.execute(
                delete(WebhookEndpointRow).where(
                    WebhookEndpointRow.id == endpoint_id, WebhookEndpointRow.project == project
                )
            )
        return bool(result.rowcount == 1)

    async def record_events(self, events: Sequence[Event]) -> int:
        """Put events in the outbox in a transaction of their own."""
        async with transaction(self._engine) as connection:
            return await insert_events(connection, events)

    async def list_deliveries(self, endpoint_id: str, *, limit: int) -> list[DeliveryRecord]:
        """The endpoint's deliveries, newest first (scope the endpoint to its project first)."""
        query = (
            select(*_DELIVERY_COLUMNS)
            .where(Deliveries.endpoint_id == endpoint_id)
            .order_by(Deliveries.seq.desc())
            .limit(limit)
        )
        async with reading(self._engine) as connection:
            return [DeliveryRecord(*row) for row in (await connection.execute(query)).all()]

    async def claim_due(self, owner: str, now: float, lease_until: float, limit: int) -> list[DueDelivery]:
        """Claim up to `limit` pending deliveries due at `now` for `owner` until `lease_until`."""
        if not await self._any_due(now):
            return []  # the usual answer, found without taking SQLite's write lock
        due = (
            select(Deliveries.seq)
            .where(Deliveries.status == "pending", Deliveries.next_attempt_at <= now)
            .order_by(Deliveries.next_attempt_at)
            .limit(limit)
        )
        async with transaction(self._engine) as connection:
            if connection.dialect.name == "postgresql":
                due = due.with_for_update(skip_locked=True)
            claim = (
                update(Deliveries)
                .where(
                    Deliveries.seq.in_(due.scalar_subquery()),
                    Deliveries.status == "pending",
                    Deliveries.next_attempt_at <= now,  # re-checked: a racing claim moved it on
                )
                .values(lease_owner=owner, next_attempt_at=lease_until)
                .returning(Deliveries.seq)
            )
            claimed = list((await connection.execute(claim)).scalars().all())
            if not claimed:
                return []
            query = (
                select(
                    Deliveries.seq,
                    Deliveries.id,
                    Deliveries.event_type,
                    Deliveries.body,
                    Deliveries.created_at,
                    Deliveries.attempts,
                    *_ENDPOINT_COLUMNS,
                )
                .join(WebhookEndpointRow, WebhookEndpointRow.id == Deliveries.endpoint_id)
                .where(Deliveries.seq.in_(claimed))
                .order_by(Deliveries.seq)
            )
            rows = (await connection.execute(query)).all()
        return [_due(row) for row in rows]

    async def _any_due(self, now: float) -> bool:
        query = (
            select(Deliveries.seq)
            .where(Deliveries.status == "pending", Deliveries.next_attempt_at <= now)
            .limit(1)
        )
        async with reading(self._engine) as connection:
            return (await connection.execute(query)).first() is not None

    async def finish_attempt(self, seq: int, owner: str, **outcome: Any) -> bool:
        """Record an attempt's outcome (status, next_attempt_at, last_*, delivered_at) and give up
        the lease; False if the lease was lost meanwhile (another deliverer took the row)."""
        async with transaction(self._engine) as connection:
            result = await connection.execute(
                update(Deliveries)
                .where(Deliveries.seq == seq, Deliveries.lease_owner == owner)
                .values(attempts=Deliveries.attempts + 1, lease_owner=None, **outcome)
            )
        return bool(result.rowcount == 1)

    async def release_leases(self, owner: str, now: float) -> None:
        """Hand `owner`'s claimed rows back, due at once (a deliverer shutting down)."""
        async with transaction(self._engine) as connection:
            await connection.execute(
                update(Deliveries)
                .where(Deliveries.lease_owner == owner, Deliveries.status == "pending")
                .values(lease_owner=None, next_attempt_at=now)
            )

    async def purge_finished(self, before: int) -> None:
        """Forget delivered and failed deliveries of events older than `before`."""
        async with transaction(self._engine) as connection:
            await connection.execute(
                delete(Deliveries).where(Deliveries.status != "pending", Deliveries.created_at < before)
            )
