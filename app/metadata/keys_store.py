"""`KeyStore`: the SQL of API keys. Only a key's SHA-256 is stored, never the key itself."""

import dataclasses
from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.records import KeyRecord
from app.metadata.engine import reading, transaction
from app.metadata.readers import reader_for
from app.metadata.store import ensure_project
from app.metadata.tables import ApiKeyRow

_KEY_COLUMNS = [getattr(ApiKeyRow, f.name) for f in dataclasses.fields(KeyRecord)]
# Built once: one indexed lookup per authenticated request, so a revocation counts at once.
_ACTIVE_BY_HASH = select(*_KEY_COLUMNS).where(
    ApiKeyRow.key_hash == bindparam("key_hash"), ApiKeyRow.revoked_at.is_(None)
)


def _key(row: Sequence[Any]) -> KeyRecord:
    record = KeyRecord(*row)
    return dataclasses.replace(record, admin=bool(record.admin))  # SQLite hands booleans back as 0/1


class KeyStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._reader = reader_for(engine)

    async def active(self, key_hash: str) -> KeyRecord | None:
        rows = await self._reader.rows(_ACTIVE_BY_HASH, {"key_hash": key_hash})
        return _key(rows[0]) if rows else None

    async def any_active(self) -> bool:
        query = select(ApiKeyRow.id).where(ApiKeyRow.revoked_at.is_(None)).limit(1)
        async with reading(self._engine) as connection:
            return (await connection.execute(query)).first() is not None

    async def insert(self, record: KeyRecord) -> None:
        async with transaction(self._engine) as connection:
            await ensure_project(connection, record.project)
            await connection.execute(insert(ApiKeyRow).values(dataclasses.asdict(record)))

    async def all(self) -> list[KeyRecord]:
        query = select(*_KEY_COLUMNS).order_by(ApiKeyRow.created_at, ApiKeyRow.id)
        async with reading(self._engine) as connection:
            return [_key(row) for row in (await connection.execute(query)).all()]

    async def revoke(self, key_id: str, key_hash: str, now: int) -> KeyRecord | None:
        """Revoke the key with this id or this hash; the key as it was, or None if there is none."""
        named = or_(ApiKeyRow.id == key_id, ApiKeyRow.key_hash == key_hash)
        async with transaction(self._engine) as connection:
            row = (await connection.execute(select(*_KEY_COLUMNS).where(named))).first()
            if row is None:
                return None
            record = _key(row)
            if record.revoked_at is None:
                await connection.execute(
                    update(ApiKeyRow).where(ApiKeyRow.id == record.id).values(revoked_at=now)
                )
        return record
