"""The async engine: SQLite pragmas (WAL, busy timeout) or PostgreSQL pool settings."""

from functools import partial
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


def create_engine(database_url: str, *, durable: bool = True, timeout_seconds: float = 30.0) -> AsyncEngine:
    """`durable`: SQLite fsyncs each commit, so an acknowledged file survives a power loss.

    `timeout_seconds` bounds PostgreSQL's connect, each statement and the wait for a pooled
    connection, so a stuck database becomes a 503 instead of a hang.
    """
    if database_url.startswith("sqlite"):
        engine = create_async_engine(database_url, connect_args={"timeout": 30})
        synchronous = "FULL" if durable else "NORMAL"
        event.listen(engine.sync_engine, "connect", partial(_sqlite_pragmas, synchronous=synchronous))
        return engine
    return create_async_engine(
        database_url,
        pool_size=10,
        max_overflow=10,
        # No pre-ping (a round trip per request): a connection that died with a PostgreSQL restart
        # fails one request with a 503, and SQLAlchemy then discards the whole pool.
        pool_pre_ping=False,
        pool_timeout=timeout_seconds,
        pool_recycle=1800,
        connect_args={"timeout": min(timeout_seconds, 10), "command_timeout": timeout_seconds},
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any, *, synchronous: str) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers run while one writer commits. NORMAL survives a process crash but may
    # lose the last commits on power loss; FULL does not.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA synchronous={synchronous}")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
