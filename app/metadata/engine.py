"""The async engine: SQLite pragmas (WAL, busy timeout) or PostgreSQL pool settings."""

from functools import partial
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


def create_engine(database_url: str, *, durable: bool = True) -> AsyncEngine:
    """`durable`: SQLite fsyncs each commit, so an acknowledged file survives a power loss."""
    if database_url.startswith("sqlite"):
        engine = create_async_engine(database_url, connect_args={"timeout": 30})
        synchronous = "FULL" if durable else "NORMAL"
        event.listen(engine.sync_engine, "connect", partial(_sqlite_pragmas, synchronous=synchronous))
        return engine
    return create_async_engine(database_url, pool_size=10, max_overflow=10, pool_pre_ping=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any, *, synchronous: str) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers run while one writer commits. NORMAL survives a process crash but may
    # lose the last commits on power loss; FULL does not.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA synchronous={synchronous}")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
