"""Alembic environment: async engine, URL from FileDock's settings, batch mode for SQLite."""

import asyncio

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

from app.metadata.engine import create_engine
from app.metadata.tables import Base
from app.settings import Settings

config = context.config
target_metadata = Base.metadata


def _database_url() -> str:
    url = config.attributes.get("database_url")
    return str(url) if url else Settings().database_url


# Any fixed number works; every replica's `filedock migrate` (and `serve`) waits on the same one.
MIGRATION_LOCK_ID = 0x46494C45444F434B  # "FILEDOCK"


def _run(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        # Replicas that start together upgrade one at a time; the rest then find nothing to do.
        # A transaction-scoped lock: it goes with the commit (or rollback) of the upgrade itself.
        connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID})
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_online() -> None:
    engine = create_engine(_database_url())
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    context.configure(url=_database_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_online())
