"""Apply the Alembic migrations programmatically (start-up and `filedock migrate`)."""

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from app.metadata.engine import create_engine
from app.metadata.store import reading

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["database_url"] = database_url
    return config


def upgrade_to_head(database_url: str) -> None:
    """Blocking: env.py runs its own event loop, so call this from a thread inside async code."""
    command.upgrade(alembic_config(database_url), "head")


async def upgrade_to_head_async(database_url: str) -> None:
    await asyncio.to_thread(upgrade_to_head, database_url)


async def migration_state(database_url: str) -> tuple[str | None, str | None, float | None]:
    """Without changing anything: the database's revision, the newest this version knows, and
    the database server's clock (Unix time; None for SQLite, which has no server). Raises
    `StorageUnavailable` if the database does not answer."""
    head = ScriptDirectory.from_config(alembic_config(database_url)).get_current_head()
    engine = create_engine(database_url, timeout_seconds=10)
    try:
        async with reading(engine) as connection:
            current = await connection.run_sync(_current_revision)
            clock = None
            if engine.dialect.name == "postgresql":
                clock = (await connection.execute(select(func.now()))).scalar_one().timestamp()
    finally:
        await engine.dispose()
    return current, head, clock


def _current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()
