"""The async engine (SQLite pragmas, PostgreSQL pool settings), the translation of database
failures, transactions, and statements compiled once for the hot-path readers (`app.metadata.readers`)."""

import contextlib
import sqlite3
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from sqlalchemy import Dialect, event
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement, Executable

from app.core.errors import StorageUnavailable


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
        connect_args=asyncpg_timeouts(timeout_seconds),
    )


def asyncpg_timeouts(timeout_seconds: float) -> dict[str, float]:
    return {"timeout": min(timeout_seconds, 10), "command_timeout": timeout_seconds}


def _sqlite_pragmas(dbapi_connection: Any, _record: Any, *, synchronous: str) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers run while one writer commits. NORMAL survives a process crash but may
    # lose the last commits on power loss; FULL does not.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA synchronous={synchronous}")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


Rows = Sequence[Sequence[Any]]


@dataclass(frozen=True, slots=True)
class Compiled:
    """A statement compiled once: its SQL, the order of its parameters, the values it carries
    itself (such as a `LIMIT 1`). The statement is kept so its id can never be reused."""

    statement: Executable
    sql: str
    positions: tuple[str, ...]
    constants: dict[str, Any]


def compile_once(cache: dict[int, Compiled], statement: Executable, dialect: Dialect) -> Compiled:
    # Statements are built once at import time, so their id is a stable cache key.
    compiled = cache.get(id(statement))
    if compiled is None:
        assert isinstance(statement, ClauseElement)
        sql = statement.compile(dialect=dialect)
        assert isinstance(sql, SQLCompiler)
        constants = {name: value for name, value in sql.params.items() if value is not None}
        compiled = Compiled(statement, str(sql), tuple(sql.positiontup or ()), constants)
        cache[id(statement)] = compiled
    return compiled


@contextlib.contextmanager
def database_errors(*driver_errors: type[Exception]) -> Iterator[None]:
    """Database failures become `StorageUnavailable` here and only here: SQLAlchemy's, the OS's
    and sqlite3's, and `driver_errors` a reader that bypasses SQLAlchemy sees raised unwrapped."""
    failures: tuple[type[Exception], ...] = (
        OperationalError,
        DBAPIError,
        OSError,
        sqlite3.Error,
        *driver_errors,
    )
    try:
        yield
    except failures as exc:
        raise StorageUnavailable("The metadata database is unavailable. Please retry.") from exc


@contextlib.asynccontextmanager
async def transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """One transaction, committed when the block ends without an error."""
    with database_errors():
        async with engine.begin() as connection:
            yield connection


@contextlib.asynccontextmanager
async def reading(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection for reads only: no explicit BEGIN/COMMIT round trips."""
    with database_errors():
        async with engine.connect() as connection:
            yield connection
