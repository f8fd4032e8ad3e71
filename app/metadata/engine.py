"""The async engine (SQLite pragmas, PostgreSQL pool settings) and the readers of hot-path queries."""

import contextlib
import sqlite3
import weakref
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

from sqlalchemy import Dialect, event
from sqlalchemy.dialects import sqlite as sqlite_dialect
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
    engine = create_async_engine(
        database_url,
        pool_size=10,
        max_overflow=10,
        # No pre-ping (a round trip per request): a connection that died with a PostgreSQL restart
        # fails one request with a 503, and SQLAlchemy then discards the whole pool.
        pool_pre_ping=False,
        pool_timeout=timeout_seconds,
        pool_recycle=1800,
        connect_args=_asyncpg_timeouts(timeout_seconds),
    )
    if engine.dialect.driver == "asyncpg":
        from app.metadata.pg_reader import AsyncpgReader  # asyncpg only where PostgreSQL is used

        _readers[engine] = AsyncpgReader(engine, timeout_seconds)
    return engine


def _asyncpg_timeouts(timeout_seconds: float) -> dict[str, float]:
    return {"timeout": min(timeout_seconds, 10), "command_timeout": timeout_seconds}


async def dispose(engine: AsyncEngine) -> None:
    """Close the engine's pool and its hot-path reader's connections."""
    reader = _readers.pop(engine, None)
    if reader is not None:
        await reader.close()
    await engine.dispose()


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


class Reader(Protocol):
    """Runs one read-only statement and returns its rows as tuples."""

    async def rows(self, statement: Executable, params: Mapping[str, Any]) -> Rows: ...

    async def close(self) -> None: ...


# One reader per engine, shared by every store on it, so a process holds one read pool.
_readers: "weakref.WeakKeyDictionary[AsyncEngine, Reader]" = weakref.WeakKeyDictionary()


def reader_for(engine: AsyncEngine) -> Reader:
    reader = _readers.get(engine)
    if reader is None:
        reader = _readers[engine] = _new_reader(engine)
    return reader


def _new_reader(engine: AsyncEngine) -> Reader:
    if engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
        return InlineSqliteReader(str(engine.url.database))
    return EngineReader(engine)


class EngineReader:
    """Reads through the async engine: an in-memory SQLite database, which only it can open, or
    an engine made without `create_engine`."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def rows(self, statement: Executable, params: Mapping[str, Any]) -> Rows:
        with database_errors():
            async with self._engine.connect() as connection:
                return (await connection.execute(statement, params)).all()

    async def close(self) -> None:
        pass  # the engine's own pool


@dataclass(frozen=True, slots=True)
class _Compiled:
    """A statement compiled once: its SQL, the order of its parameters, the values it carries
    itself (such as a `LIMIT 1`). The statement is kept so its id can never be reused."""

    statement: Executable
    sql: str
    positions: tuple[str, ...]
    constants: dict[str, Any]


def _compile(cache: dict[int, _Compiled], statement: Executable, dialect: Dialect) -> _Compiled:
    # Statements are built once at import time, so their id is a stable cache key.
    compiled = cache.get(id(statement))
    if compiled is None:
        assert isinstance(statement, ClauseElement)
        sql = statement.compile(dialect=dialect)
        assert isinstance(sql, SQLCompiler)
        constants = {name: value for name, value in sql.params.items() if value is not None}
        compiled = _Compiled(statement, str(sql), tuple(sql.positiontup or ()), constants)
        cache[id(statement)] = compiled
    return compiled


class InlineSqliteReader:
    """Reads SQLite right on the event loop, through one plain `sqlite3` connection per process.

    A point read or a 100-row page from a WAL database takes tens of microseconds; going
    through aiosqlite costs several thread hand-offs (cursor, execute, fetch, close, rollback)
    that take far longer under load. In WAL mode readers never wait for writers, so the loop
    does not stall; a busy database (a rare checkpoint or recovery) fails fast as a 503.
    Each statement is its own read transaction, so it sees every commit made before it.
    """

    def __init__(self, path: str) -> None:
        self._connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._connection.execute("PRAGMA query_only=ON")
        self._connection.execute(f"PRAGMA busy_timeout={INLINE_BUSY_TIMEOUT_MS}")
        self._compiled: dict[int, _Compiled] = {}

    async def rows(self, statement: Executable, params: Mapping[str, Any]) -> Rows:
        compiled = _compile(self._compiled, statement, _NAMED_SQLITE)
        with database_errors():
            return self._connection.execute(compiled.sql, {**compiled.constants, **params}).fetchall()

    async def close(self) -> None:
        self._connection.close()


INLINE_BUSY_TIMEOUT_MS = 200
_NAMED_SQLITE = sqlite_dialect.dialect(paramstyle="named")


@contextlib.contextmanager
def database_errors() -> Iterator[None]:
    """Database failures become `StorageUnavailable` here and only here."""
    try:
        yield
    except (OperationalError, DBAPIError, OSError, sqlite3.Error) as exc:
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
