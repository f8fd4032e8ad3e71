"""Apply the Alembic migrations programmatically (start-up and `filedock migrate`).

The migrations live at the top of the repository, beside `app/`. A source tree (and an editable
install of it) uses them there; a regular install carries a copy as data files under
`<prefix>/share/filedock/migrations` (pyproject.toml), found through the distribution's RECORD.
"""

import asyncio
import functools
from importlib import metadata
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import func, select
from sqlalchemy.engine import Connection

import app
from app.metadata.engine import create_engine, reading
from app.metadata.readers import dispose

DISTRIBUTION = "filedock"
INSTALLED_ENV_PY = ("share", "filedock", "migrations", "env.py")


@functools.cache
def migrations_dir() -> Path:
    """The directory holding `env.py` and `versions/`, in the source tree or installed."""
    source_tree = Path(app.__path__[0]).resolve().parent
    if (source_tree / "alembic.ini").is_file() and (source_tree / "migrations" / "env.py").is_file():
        return source_tree / "migrations"
    installed = _installed_migrations_dir()
    if installed is not None:
        return installed
    raise RuntimeError(
        f"the Alembic migrations are missing: neither {source_tree / 'migrations'} nor an installed "
        f"share/filedock/migrations exists; reinstall FileDock"
    )


def _installed_migrations_dir() -> Path | None:
    try:
        distribution = metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return None
    for file in distribution.files or []:
        if file.parts[-len(INSTALLED_ENV_PY) :] == INSTALLED_ENV_PY:
            return Path(str(distribution.locate_file(file))).resolve().parent
    return None


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
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
        await dispose(engine)
    return current, head, clock


def _current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()
